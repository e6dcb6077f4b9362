"""The thirteenth session's GPU numbers from the raw files here (README.md): Change 6 in the step benchmark
(bench/), the headroom probe with the sampling fix, L-hr5's checkpoints against the warm start (paired by
task, on the 138 validation tasks and on the 16 pooled ones), and the pooled tasks' sampled success while
training against what the probe saw."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from headroom_runs import print_checkpoints, print_pool_training, print_probe, print_training_variants  # noqa: E402

bench = json.load(open("bench/bench-variants.json"))
summary = bench["summary"]["compiled"]
print(f"bench on {bench['gpu']}: copy {bench['ceilings']['copy_bandwidth_gb_s']:.0f} GB/s, "
      f"bf16 matmul {bench['ceilings']['matmul_tflops']:.0f} TFLOP/s; step {summary['step_s']:.2f} s (generation "
      f"{summary['generation_s']:.2f}, training {summary['training_s']:.2f}, other {summary['other_s']:.2f}), "
      f"{summary['generated_tokens_per_s']:.0f} generated tok/s = {summary['roofline_fraction']:.1%} of the decode "
      f"roofline, training MFU {summary['mfu_training']:.1%}, "
      f"peak {summary['peak_memory']['timed_steps_max_allocated_mb']:.0f} MiB")
print_training_variants(summary, "bench/bench-child.log")

choice = print_probe("train-L-hr5.log", "pool-L-hr5.json")
print_checkpoints("L-hr5", (10, 20, 30))
print_pool_training("metrics-L-hr5.jsonl", choice, 10)
