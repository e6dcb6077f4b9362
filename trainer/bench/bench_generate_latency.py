"""Micro-benchmark: time per decoding step of the policy's generate, by batch size.

Tells whether rollout generation is bound by per-token latency (the time per
step stays flat as the batch grows, so fewer rollouts per GPU save nothing) or
by throughput (it grows with the batch). The model is built from a config.json
with random weights (timing does not depend on the weights), in bf16, and
called the way TRL's GRPOTrainer calls it without vLLM (`generate` with
sampling, `disable_compile=True`, the model's own EOS). Every prompt has
`--prompt-len` random tokens.

For each batch size: one call with 1 new token (prefill) and one with
`--new-tokens` (prefill + decode); time per decoding step = (full - prefill) /
(decoded tokens - 1). `--engine generate_batch` uses transformers' continuous
batching instead (TRL's `use_transformers_continuous_batching`). `--engine compiled`
decodes as the trainer's rollouts do on CUDA (training/compiled_generation.py: static
cache sized per call, compiled step; top-k 50, as configs/builtin-gpu.yaml samples), with
`--attention sdpa` (transformers' SDPA path, which repeats the cached key/value heads per
query head when compiled) or `grouped` (training/grouped_decode_attention.py, Change 7).

`--ceilings` first measures the copy bandwidth and bf16 matmul rate
(bench_grpo_step_gpu.measure_ceilings) and gives each batch its decode roofline as
bench_grpo_step_gpu.py defines it: per decoding step, all weights plus the KV cache of each
row's real context (the prompt and half the new tokens) at the copy bandwidth;
`roofline_fraction` = that time / the measured time per decoding step.
`--profile-batch N` decodes once more at batch N under torch.profiler and reports the GPU's
kernel time per decoding step (the share of the step the GPU is busy) and the kernels that took it.

    python trainer/bench/bench_generate_latency.py --config MODEL_DIR/config.json --out gen.json \\
        [--batches 32,64,256,512] [--prompt-len 750] [--new-tokens 64] [--threads N] \\
        [--engine generate|generate_batch|compiled] [--attention sdpa|grouped] [--repeats 2] \\
        [--ceilings] [--profile-batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # grpo_trainer


def kernel_profile(run: Any, batch: int, new_tokens: int) -> dict[str, Any]:
    """GPU kernel time of one prefill call and one full call at `batch`, per decoding step."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    def kernels(n_new: int) -> tuple[list[Any], int]:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            _, decoded = run(batch, n_new)
            torch.cuda.synchronize()
        return [e for e in prof.key_averages() if e.device_type == DeviceType.CUDA], decoded

    prefill, _ = kernels(1)
    full, decoded = kernels(new_tokens)
    steps = max(1, decoded - 1)
    total_us = sum(e.self_device_time_total for e in full) - sum(e.self_device_time_total for e in prefill)
    top = sorted(full, key=lambda e: e.self_device_time_total, reverse=True)[:10]
    return {"batch": batch, "decoded_tokens": decoded,
            "kernel_ms_per_step": round(total_us / 1e3 / steps, 3),
            "kernel_launches_per_step": round((sum(e.count for e in full) - sum(e.count for e in prefill)) / steps, 1),
            "top_kernels": [{"name": e.key[:100], "ms_per_step": round(e.self_device_time_total / 1e3 / steps, 3),
                             "calls_per_step": round(e.count / steps, 1)} for e in top]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a model's config.json (random weights are used)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", default="32,64,256,512")
    parser.add_argument("--prompt-len", type=int, default=750)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (a Ray worker sets its CPUs)")
    parser.add_argument("--engine", choices=("generate", "generate_batch", "compiled"), default="generate")
    parser.add_argument("--attention", choices=("sdpa", "grouped"), default="sdpa")
    parser.add_argument("--ceilings", action="store_true")
    parser.add_argument("--profile-batch", type=int, default=None)
    parser.add_argument("--label", default="")
    parser.add_argument("--device", default="cuda")
    ns = parser.parse_args()

    import torch
    from bench_grpo_step_gpu import decode_step_roofline_s, measure_ceilings, model_shape
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from grpo_trainer.training.compiled_generation import compiled_settings, static_cache_len
    from grpo_trainer.training.grouped_decode_attention import grouped_decode_attention

    if ns.threads:
        torch.set_num_threads(ns.threads)
    cuda = ns.device.startswith("cuda")
    ceilings = measure_ceilings() if ns.ceilings and cuda else None
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(Path(ns.config).resolve().parent))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).to(ns.device).eval()
    shape = model_shape(model)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()
    eos = config.eos_token_id
    # One cache length for every call (the prefill-only ones too), as the trainer sizes it for a turn.
    cache_len = static_cache_len([[0] * ns.prompt_len], ns.new_tokens)

    def gen_config(new_tokens: int) -> GenerationConfig:
        if ns.engine == "compiled":
            return GenerationConfig(max_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_p=1.0, top_k=50,
                                    pad_token_id=config.pad_token_id, eos_token_id=eos, max_cache_len=cache_len,
                                    **compiled_settings())
        # TRL's GRPOTrainer (no vLLM): sampling at temperature 1, top_p 1, compile off.
        return GenerationConfig(max_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_p=1.0,
                                pad_token_id=config.pad_token_id, eos_token_id=eos, disable_compile=True)

    def run(batch: int, new_tokens: int) -> tuple[float, int]:
        ids = torch.randint(3, config.vocab_size, (batch, ns.prompt_len))
        sync()
        started = time.perf_counter()
        with torch.no_grad(), grouped_decode_attention(model, ns.attention == "grouped"):
            if ns.engine == "generate_batch":
                outputs = model.generate_batch(ids.tolist(), generation_config=gen_config(new_tokens),
                                               progress_bar=False)
                decoded = max(len(o.generated_tokens) for o in outputs.values())
            else:
                out = model.generate(input_ids=ids.to(ns.device), attention_mask=torch.ones_like(ids).to(ns.device),
                                     generation_config=gen_config(new_tokens))
                decoded = int(out.shape[1] - ns.prompt_len)
        sync()
        return time.perf_counter() - started, decoded

    def roofline(batch: int, step_s: float) -> dict[str, Any]:
        if ceilings is None:
            return {}
        ideal = decode_step_roofline_s(shape, batch * (ns.prompt_len + ns.new_tokens / 2),
                                       ceilings["copy_bandwidth_gb_s"])
        return {"roofline_step_ms": round(1e3 * ideal, 3), "roofline_tokens_per_s": round(batch / ideal, 1),
                "roofline_fraction": round(ideal / step_s, 4),
                "static_cache_gb": round(batch * cache_len * shape["kv_bytes_per_token"] / 1e9, 3)}

    result: dict[str, Any] = {
        "benchmark": "generate-latency", "label": ns.label, "engine": ns.engine, "attention": ns.attention,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "model": {k: getattr(config, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers",
                                                        "num_attention_heads", "num_key_value_heads", "vocab_size")},
        "prompt_len": ns.prompt_len, "new_tokens": ns.new_tokens, "ceilings": ceilings, "runs": [],
    }
    if ns.engine == "compiled":
        result["static_cache_len"] = cache_len
    import transformers

    result["transformers"] = transformers.__version__
    t0 = time.perf_counter()
    run(8, 4)  # warm-up: kernels, allocator
    result["warmup_s"] = round(time.perf_counter() - t0, 2)
    for batch in (int(b) for b in ns.batches.split(",") if b.strip()):
        if ns.engine == "compiled":  # a new batch size compiles (once) and records its CUDA graphs: untimed
            t0 = time.perf_counter()
            run(batch, 1)
            run(batch, ns.new_tokens)
            result.setdefault("compile_s", {})[str(batch)] = round(time.perf_counter() - t0, 2)
        prefill, full, steps = [], [], []
        for _ in range(ns.repeats):
            prefill.append(run(batch, 1)[0])
            seconds, decoded = run(batch, ns.new_tokens)
            full.append(seconds)
            steps.append(decoded)
        per_step = [(f - p) / max(1, d - 1) for f, p, d in zip(full, prefill, steps, strict=True)]
        step_s = statistics.median(per_step)
        row = {"batch": batch, "prefill_s": round(statistics.median(prefill), 4),
               "full_s": round(statistics.median(full), 4), "decoded_tokens": steps,
               "decode_step_ms": round(1e3 * step_s, 2),
               "decode_tokens_per_s": round(batch / step_s, 1), **roofline(batch, step_s)}
        result["runs"].append(row)
        print(json.dumps(row), flush=True)
        Path(ns.out).write_text(json.dumps(result, indent=2))
    if ns.profile_batch and cuda:
        try:
            result["profile"] = kernel_profile(run, ns.profile_batch, ns.new_tokens)
        except Exception as exc:  # the timed runs above are the result; a profiler failure is only reported
            result["profile"] = {"error": repr(exc)[:500]}
        wall = next((r["decode_step_ms"] for r in result["runs"] if r["batch"] == ns.profile_batch), None)
        if wall and "kernel_ms_per_step" in result["profile"]:
            result["profile"]["gpu_busy_share"] = round(result["profile"]["kernel_ms_per_step"] / wall, 3)
        print(json.dumps(result["profile"]), flush=True)
    Path(ns.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
