"""Training MFU of the step's own training part (compiled, one sequence per micro batch, the mask stand-in) at 16, 32,
64 and 128 rows a micro batch, from the raw files here (README.md). Run it in this directory.

A bench that ran out of time or memory wrote no summary; its steps are read from the child's `[bench]` progress
lines and the trainer's metrics (`train/packed_tokens`: with no replays these are the real tokens the step trained),
and counted as bench_grpo_step_gpu.py counts them.
"""
import json
import re
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "trainer" / "bench")]
from bench_grpo_step_gpu import steps_from_progress, training_flops  # noqa: E402

BENCHES = {"A16": "16 rows (the shipped micro batch)", "C32": "32 rows (the sixteenth session's bench C again)",
           "C64": "64 rows, first try (stopped by its time limit)", "C64b": "64 rows, again with more time",
           "C128": "128 rows, 128 rollouts a step (CUDA out of memory in step 2)"}


for name, what in BENCHES.items():
    b = json.loads(Path(f"bench-{name}.json").read_text())
    run = b["runs"]["eager"]
    peak = b["ceilings"]["matmul_tflops"]
    print(f"bench-{name}: {what}; {b['gpu']}, torch {b['torch']}, transformers {b['transformers']}, trl {b['trl']}; "
          f"{peak} TFLOP/s bf16 measured; exit code {run['exit_code']}")
    summary = run.get("summary")
    if summary and summary["per_step"]:
        print(f"  micro batch {run['per_device_train_batch_size']} x {run['gradient_accumulation_steps']}; warm-up "
              f"step {summary['warmup_step_s']} s; unique compiled graphs after training "
              f"{run['dynamo_stats_after_training']['unique_graphs']}; peak "
              f"{run['peak_memory']['timed_steps_max_allocated_mb']:,.0f} MiB")
        for s in run["steps"]:
            print(f"    step {s['step']}: micro batches (rows, real tokens, peak MiB) "
                  f"{[(m['rows'], m['real_tokens'], round(m['peak_mb'])) for m in s['micro_batches']]}")
        for r in summary["per_step"]:
            print(f"  timed step {r['step']}: training {r['training_s']:.3f} s for {r['real_tokens']:,} real tokens, "
                  f"MFU {r['mfu_training']:.1%}")
        print(f"  mean: training {summary['mean']['training_s']:.3f} s, MFU {summary['mean']['mfu_training']:.1%}")
        continue
    model = json.loads(Path("bench-C32.json").read_text())["runs"]["eager"]["model"]  # the same warmed model
    rollouts = 128 if name == "C128" else 64
    for s in steps_from_progress(Path(f"bench-{name}-child.log").read_text(),
                                 Path(f"bench-{name}-metrics.jsonl").read_text()):
        flops = training_flops(s["real_tokens"], model, s["real_tokens"] / rollouts)
        kind = "warm-up" if s["step"] == 1 else "timed"
        print(f"  {kind} step {s['step']}: training {s['training_s']:.3f} s for {s['real_tokens']:,} real tokens, "
              f"MFU {flops / s['training_s'] / (peak * 1e12):.1%}")

print("\nbench-C32at: 32 rows with TORCHINDUCTOR_MAX_AUTOTUNE=1 (its compile outran the time limit). Inductor timed "
      "each training matrix product of the first micro batch, cuBLAS against Triton templates:")
log = Path("bench-C32at-child.log").read_text()
best = re.findall(r"AUTOTUNE (\w+)\((\d+)x(\d+), (\d+)x(\d+)\)\n(?:.*\n){2}\s+(\S+) ([\d.]+) ms 100.0%", log)
for op, m, k, _, n, kernel, ms in best:
    m, k, n, ms = int(m), int(k), int(n), float(ms)
    tflops = 2 * m * k * n / (ms * 1e-3) / 1e12
    print(f"  {op} {m} x {k} @ {k} x {n}: best {kernel} {ms:.4f} ms = {tflops:.0f} TFLOP/s ({tflops / 790.0:.0%} of "
          "the 8192^3 rate)")
