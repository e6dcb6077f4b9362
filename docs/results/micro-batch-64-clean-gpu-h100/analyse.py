"""Training MFU at 64 rows a micro batch over timed steps that compiled nothing, and 32 rows again, from the raw
files here (README.md). Run it in this directory.

C64r wrote its summary: its numbers are the benchmark's own. C64w2 and C32w2 ran out of their time limit before
the benchmark kept stopped runs' steps, so theirs are read from the child's progress lines, which round each of the
four phases the training seconds are made of to 0.01 s: each such time carries up to +-0.02 s.
"""
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "trainer" / "bench")]
from bench_grpo_step_gpu import steps_from_progress, training_flops  # noqa: E402

ROUNDING_S = 4 * 0.005  # training_seconds adds or subtracts four phases, each rounded to 0.01 s

b = json.loads(Path("bench-C64r.json").read_text())
run = b["runs"]["eager"]
summary = run["summary"]
print(f"bench-C64r: 64 rows, 1 warm-up + 3 timed steps; {b['gpu']}, torch {b['torch']}, transformers "
      f"{b['transformers']}, trl {b['trl']}; {b['ceilings']['matmul_tflops']} TFLOP/s bf16 measured; exit code "
      f"{run['exit_code']}")
print(f"  warm-up step {summary['warmup_step_s']} s; timed steps that compiled: "
      f"{summary['timed_steps_that_compiled']}; peak {run['peak_memory']['timed_steps_max_allocated_mb']:,.0f} MiB")
for r in summary["per_step"]:
    print(f"  timed step {r['step']}: training {r['training_s']:.3f} s for {r['real_tokens']:,} real tokens, "
          f"MFU {r['mfu_training']:.1%}, graphs compiled {r['graphs_compiled']}, step {r['step_s']:.1f} s")
mfus = [r["mfu_training"] for r in summary["per_step"]]
print(f"  mean: training {summary['mean']['training_s']:.3f} s, {summary['mean']['real_tokens']:,.0f} real tokens, "
      f"MFU {summary['mean']['mfu_training']:.1%} (range {min(mfus):.1%} to {max(mfus):.1%})")

model = run["model"]  # the same warmed model in every bench here
for name, what in {"C64w2": "64 rows, 2 warm-up steps", "C32w2": "32 rows, 2 warm-up steps"}.items():
    bn = json.loads(Path(f"bench-{name}.json").read_text())
    peak = bn["ceilings"]["matmul_tflops"] * 1e12
    print(f"\nbench-{name}: {what}; stopped by its time limit (exit code {bn['runs']['eager']['exit_code']}); "
          f"{bn['ceilings']['matmul_tflops']} TFLOP/s bf16 measured")
    for s in steps_from_progress(Path(f"bench-{name}-child.log").read_text(),
                                 Path(f"bench-{name}-metrics.jsonl").read_text()):
        if s["graphs_compiled"]:
            print(f"  step {s['step']} (graphs compiled {s['graphs_compiled']}): training {s['training_s']:.0f} s, "
                  "compiling")
            continue
        flops = training_flops(s["real_tokens"], model, s["real_tokens"] / 64)
        lo, mid, hi = (flops / (s["training_s"] + d) / peak for d in (ROUNDING_S, 0.0, -ROUNDING_S))
        print(f"  step {s['step']} (graphs compiled {s['graphs_compiled']}): training {s['training_s']:.2f} "
              f"+- {ROUNDING_S:.2f} s for {s['real_tokens']:,} real tokens, MFU {mid:.1%} ({lo:.1%} to {hi:.1%})")
