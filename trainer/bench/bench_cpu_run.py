"""Benchmark: the shipped CPU config, 12 GRPO steps of SmolLM2-135M, end to end.

Runs `python -m grpo_trainer train` exactly as a user would (a fresh
checkpoint dir), then reads metrics.jsonl and prints one JSON object:
wall time, step time, rollout (generation) tokens/s, training tokens/s,
validation accuracies and the reward curve. Target: <= 600 s wall on a
2-core machine with checkpoints at 6 and 12 and validations at 6 and 12 (the
pipeline's baseline evaluation covers step 0; add `grpo.val_at_start=true` for
the run measured in docs/trainer.md, which also validated at step 0).

    python trainer/bench/bench_cpu_run.py --model DIR --data-dir DIR [--out results.json] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAINER_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER_ROOT))

from grpo_trainer.training import checkpoints as ckpt  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="HF dir made by `prepare-model` (SmolLM2-135M)")
    parser.add_argument("--data-dir", required=True, help="dir with train.jsonl/validation.jsonl from `prepare-data`")
    parser.add_argument("--config", default=str(TRAINER_ROOT.parent / "configs" / "builtin-cpu.yaml"),
                        help="a pipeline config (its trainer: section) or a trainer config")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*")
    ns = parser.parse_args()
    run_dir = Path(ns.run_dir or tempfile.mkdtemp(prefix="bench-cpu-"))
    cmd = [sys.executable, "-m", "grpo_trainer", "train", "--config", ns.config,
           f"policy.model_name={ns.model}", f"data.train.data_path={Path(ns.data_dir) / 'train.jsonl'}",
           f"data.validation.data_path={Path(ns.data_dir) / 'validation.jsonl'}",
           f"checkpointing.checkpoint_dir={run_dir / 'checkpoints'}", f"logger.log_dir={run_dir / 'logs'}",
           *ns.overrides]
    env = {**os.environ, "PYTHONPATH": str(TRAINER_ROOT)}
    env.pop("RAY_ADDRESS", None)
    started = time.time()
    proc = subprocess.run(cmd, env=env, cwd=TRAINER_ROOT)
    wall = time.time() - started
    records = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "validation"]

    def total(key: str) -> float:
        return sum(r.get(key, 0.0) or 0.0 for r in train)

    step_times = [r["timing/train/total_step_time"] for r in train]
    result = {
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "steps": len(train),
        "step_time_s_mean": round(statistics.mean(step_times), 2) if step_times else None,
        "step_time_s_median": round(statistics.median(step_times), 2) if step_times else None,
        "rollout_tokens_per_s": round(total("train/generated_tokens") / max(1e-9, total("timing/train/generation")), 1),
        "training_tokens_per_s": round(total("train/trained_tokens")
                                       / max(1e-9, total("timing/train/policy_training")), 1),
        "validation_time_s_total": round(sum(r["timing/validation/total_validation_time"] for r in val), 1),
        "validation_accuracy": {r["step"]: r["validation/accuracy"] for r in val},
        "train_reward": {r["step"]: r.get("train/reward") for r in train},
        "checkpoints": [c.path.name for c in ckpt.list_complete(run_dir / "checkpoints")],
        "run_dir": str(run_dir),
        "cpu_count": os.cpu_count(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if ns.out:
        Path(ns.out).write_text(text)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
