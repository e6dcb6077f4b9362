"""The tenth session's GPU numbers from the raw files here (README.md): the headroom probe, L-hr's checkpoints
against the warm start (paired by task, on the 138 validation tasks and on the 16 pooled ones), the pooled
tasks' sampled success while training against what the probe saw, and the variant benchmark."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from headroom_runs import print_checkpoints, print_pool_training, print_probe, print_training_variants  # noqa: E402

choice = print_probe("train-L-hr.log", "pool-L-hr.json")
print_checkpoints("L-hr", (10, 20, 30, 40))
print_pool_training("metrics-L-hr.jsonl", choice, 20)

bench = json.load(open("bench-variants.json"))["summary"]["compiled"]
print(f"bench: step {bench['step_s']:.2f} s (generation {bench['generation_s']:.2f}, "
      f"training {bench['training_s']:.2f}), {bench['generated_tokens_per_s']:.0f} generated tok/s = "
      f"{bench['roofline_fraction']:.1%} of the decode roofline, "
      f"training MFU {bench['mfu_training']:.1%}; first step {bench['warmup_step_s'][0]:.1f} s")
print_training_variants(bench, "bench-child.log")
