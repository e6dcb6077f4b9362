"""GPU benchmark: how much of the bf16 matmul rate SmolLM2-135M's training can reach at all (issue #15).

bench_grpo_step_gpu.py measures the training part of a GRPO step at 8.8-10.4 % MFU. This script asks
what the model's own shapes allow, without TRL, padding or the optimizer, in three layers:

* kernels: every matrix product of one forward + backward (per layer q, k, v, o, gate, up, down; the
  tied LM head), each as forward X.W, input gradient dY.W^T and weight gradient X^T.dY, at M = rows x
  length tokens; and causal SDPA attention forward + backward. Each timed alone (CUDA events, median).
  `kernel_bound_mfu` = the FLOPs MFU counts / the sum of those times / the 8192^3 matmul rate: the MFU a
  training step would reach if it ran nothing but these kernels, back to back.
* model: the whole HF model (random weights, bf16, SDPA), forward + log-softmax of the sampled token
  (as GRPO's per-token log-probs) + backward, unpadded, eager and under `torch.compile`.
* the same FLOPs formula as bench_grpo_step_gpu.py (`training_flops`), so the numbers compare.

    python trainer/bench/bench_training_ceiling.py --config-from DIR --out ceiling.json \\
        [--rows 16] [--lengths 1024,2048] [--variants eager,compiled] [--reps 5]

DIR holds the model's config.json (prepare-model's output). Without CUDA it runs a tiny smoke test of
itself on the CPU (placeholder ceilings); its numbers mean nothing there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench_grpo_step_gpu import measure_ceilings, median_seconds, model_shape, training_flops


def linear_shapes(shape: dict[str, Any], intermediate: int) -> dict[str, tuple[int, int, int]]:
    """(in, out, count per model) of every weight matrix product."""
    h, kv = shape["hidden"], shape["kv_heads"] * shape["head_dim"]
    q = shape["heads"] * shape["head_dim"]
    n = shape["layers"]
    return {"q_proj": (h, q, n), "k_proj": (h, kv, n), "v_proj": (h, kv, n), "o_proj": (q, h, n),
            "gate_proj": (h, intermediate, n), "up_proj": (h, intermediate, n), "down_proj": (intermediate, h, n),
            "lm_head": (h, shape["vocab"], 1)}


def time_kernels(shape: dict[str, Any], intermediate: int, rows: int, length: int, reps: int, device: str,
                 dtype: Any) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    cuda = device == "cuda"
    m = rows * length
    out: dict[str, Any] = {"tokens": m, "linears": {}}
    total = 0.0
    for name, (k, n, count) in linear_shapes(shape, intermediate).items():
        x = torch.randn(m, k, device=device, dtype=dtype)
        w = torch.randn(k, n, device=device, dtype=dtype)
        dy = torch.randn(m, n, device=device, dtype=dtype)
        parts = {"forward": lambda x=x, w=w: x @ w, "input_grad": lambda dy=dy, w=w: dy @ w.T,
                 "weight_grad": lambda x=x, dy=dy: x.T @ dy}
        row: dict[str, Any] = {"k": k, "n": n, "count": count}
        for part, fn in parts.items():
            s = median_seconds(fn, reps, 2, cuda)
            row[f"{part}_s"] = s
            row[f"{part}_tflops"] = round(2 * m * k * n / s / 1e12, 2)
            total += s * count
        out["linears"][name] = row
        del x, w, dy
    q = torch.randn(rows, shape["heads"], length, shape["head_dim"], device=device, dtype=dtype, requires_grad=True)
    kk = torch.randn_like(q, requires_grad=True)
    v = torch.randn_like(q, requires_grad=True)
    g = torch.randn_like(q)

    def attention() -> None:
        o = F.scaled_dot_product_attention(q, kk, v, is_causal=True)
        o.backward(g)

    s = median_seconds(attention, reps, 2, cuda)
    # causal: half of the 4 x L^2 x d forward products, times 3 for forward + backward
    attn_flops = 3 * 2 * rows * length * length * shape["heads"] * shape["head_dim"]
    out["attention"] = {"forward_backward_s": s, "tflops": round(attn_flops / s / 1e12, 2), "count": shape["layers"]}
    total += s * shape["layers"]
    out["kernel_seconds"] = total
    return out


def time_model(model: Any, rows: int, length: int, reps: int, device: str) -> float:
    import torch

    ids = torch.randint(0, model.config.vocab_size, (rows, length), device=device)

    def step() -> None:
        logits = model(input_ids=ids).logits[:, :-1].float()
        # GRPO's per-token log-prob of each sampled token (TRL's selective log-softmax)
        logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        (-logp.mean()).backward()
        model.zero_grad(set_to_none=True)

    return median_seconds(step, reps, 2, device == "cuda")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-from", required=True, help="dir with the model's config.json")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--lengths", default="1024,2048")
    parser.add_argument("--variants", default="eager,compiled")
    parser.add_argument("--reps", type=int, default=5)
    ns = parser.parse_args()

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    config = AutoConfig.from_pretrained(ns.config_from)
    dtype = torch.bfloat16 if cuda else torch.float32
    rows, lengths = ns.rows, [int(x) for x in ns.lengths.split(",")]
    if not cuda:  # smoke test of the script only
        config.num_hidden_layers, rows, lengths = 2, 2, [min(lengths[0], 64)]
    ceilings = measure_ceilings() if cuda else {"matmul_tflops": 0.1, "placeholder": True}
    peak = ceilings["matmul_tflops"] * 1e12
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa").to(device)
    shape = model_shape(model)
    result: dict[str, Any] = {"benchmark": "training-ceiling", "gpu": torch.cuda.get_device_name(0) if cuda else None,
                              "torch": torch.__version__, "ceilings": ceilings, "model": shape, "rows": rows,
                              "results": []}
    out = Path(ns.out)
    for length in lengths:
        tokens = rows * length
        flops = training_flops(tokens, shape, length)
        kernels = time_kernels(shape, config.intermediate_size, rows, length, ns.reps, device, dtype)
        entry: dict[str, Any] = {"length": length, "tokens": tokens, "training_flops": flops, "kernels": kernels,
                                 "kernel_bound_mfu": round(flops / kernels["kernel_seconds"] / peak, 4)}
        for variant in [v.strip() for v in ns.variants.split(",") if v.strip()]:
            runner = torch.compile(model) if variant == "compiled" else model
            t = time.time()
            try:
                s = time_model(runner, rows, length, ns.reps, device)
                entry[variant] = {"step_s": s, "tokens_per_s": round(tokens / s), "mfu": round(flops / s / peak, 4),
                                  "wall_s": round(time.time() - t, 1)}
            except Exception as exc:  # a variant that fails (compiler, memory) is a result, not the end of the run
                entry[variant] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            if cuda:
                entry[variant]["peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.empty_cache()
        result["results"].append(entry)
        out.write_text(json.dumps(result, indent=2))
        print(json.dumps({k: entry[k] for k in entry if k != "kernels"} | {
            "linear_tflops": {n: r["forward_tflops"] for n, r in kernels["linears"].items()},
            "attention_tflops": kernels["attention"]["tflops"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
