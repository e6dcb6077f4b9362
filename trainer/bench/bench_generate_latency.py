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
batching instead (TRL's `use_transformers_continuous_batching`).

    python trainer/bench/bench_generate_latency.py --config MODEL_DIR/config.json --out gen.json \\
        [--batches 32,64,256,512] [--prompt-len 750] [--new-tokens 64] [--threads N] \\
        [--engine generate|generate_batch] [--repeats 2]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a model's config.json (random weights are used)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--batches", default="32,64,256,512")
    parser.add_argument("--prompt-len", type=int, default=750)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (a Ray worker sets its CPUs)")
    parser.add_argument("--engine", choices=("generate", "generate_batch"), default="generate")
    parser.add_argument("--label", default="")
    parser.add_argument("--device", default="cuda")
    ns = parser.parse_args()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    if ns.threads:
        torch.set_num_threads(ns.threads)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(Path(ns.config).resolve().parent))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).to(ns.device).eval()
    cuda = ns.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()
    eos = config.eos_token_id

    def gen_config(new_tokens: int) -> GenerationConfig:
        # TRL's GRPOTrainer (no vLLM): sampling at temperature 1, top_p 1, compile off.
        return GenerationConfig(max_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_p=1.0,
                                pad_token_id=config.pad_token_id, eos_token_id=eos, disable_compile=True)

    def run(batch: int, new_tokens: int) -> tuple[float, int]:
        ids = torch.randint(3, config.vocab_size, (batch, ns.prompt_len))
        sync()
        started = time.perf_counter()
        with torch.no_grad():
            if ns.engine == "generate":
                out = model.generate(input_ids=ids.to(ns.device), attention_mask=torch.ones_like(ids).to(ns.device),
                                     generation_config=gen_config(new_tokens))
                decoded = int(out.shape[1] - ns.prompt_len)
            else:
                outputs = model.generate_batch(ids.tolist(), generation_config=gen_config(new_tokens),
                                               progress_bar=False)
                decoded = max(len(o.generated_tokens) for o in outputs.values())
        sync()
        return time.perf_counter() - started, decoded

    result: dict[str, Any] = {
        "benchmark": "generate-latency", "label": ns.label, "engine": ns.engine,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "model": {k: getattr(config, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers",
                                                        "vocab_size")},
        "prompt_len": ns.prompt_len, "new_tokens": ns.new_tokens, "runs": [],
    }
    import transformers

    result["transformers"] = transformers.__version__
    t0 = time.perf_counter()
    run(8, 4)  # warm-up: kernels, allocator
    result["warmup_s"] = round(time.perf_counter() - t0, 2)
    for batch in (int(b) for b in ns.batches.split(",") if b.strip()):
        prefill, full, steps = [], [], []
        for _ in range(ns.repeats):
            prefill.append(run(batch, 1)[0])
            seconds, decoded = run(batch, ns.new_tokens)
            full.append(seconds)
            steps.append(decoded)
        per_step = [(f - p) / max(1, d - 1) for f, p, d in zip(full, prefill, steps, strict=True)]
        row = {"batch": batch, "prefill_s": round(statistics.median(prefill), 4),
               "full_s": round(statistics.median(full), 4), "decoded_tokens": steps,
               "decode_step_ms": round(1e3 * statistics.median(per_step), 2),
               "decode_tokens_per_s": round(batch / statistics.median(per_step), 1)}
        result["runs"].append(row)
        print(json.dumps(row), flush=True)
        Path(ns.out).write_text(json.dumps(result, indent=2))
    Path(ns.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
