"""A GPU step benchmark stopped before its last step keeps and summarises the steps it finished
(bench_grpo_step_gpu.py).

On an H100, two benches at 64 rows a micro batch ran out of their time limit after 7 minutes of finished steps and
wrote no summary at all (docs/benchmarks.md, Change 9). This runs the benchmark for real on the CPU with the tiny
model, kills its child with SIGKILL once it has finished the warm-up step and one timed step, and reads the parent's
report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from grpo_trainer.training.local_ray import pids_mentioning

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "trainer" / "bench" / "bench_grpo_step_gpu.py"


def _steps_written(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["steps"])
    except (OSError, ValueError, KeyError):  # not written yet
        return 0


def test_a_killed_child_leaves_its_finished_steps_summarised(tiny_model: Path, task_files: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    train, _ = task_files
    work, out = tmp_path / "work", tmp_path / "bench.json"
    child_out = work / "eager" / "result.json"
    # A relative --config, as typed from the repository root: the children run elsewhere.
    args = [sys.executable, str(BENCH), "--model", str(tiny_model), "--data-dir", str(train.parent),
            "--out", str(out), "--config", "configs/builtin-cpu.yaml", "--modes", "eager", "--warmup", "1",
            "--steps", "3", "--work-dir", str(work), "--set", "grpo.num_prompts_per_step=2",
            "--set", "grpo.num_generations_per_prompt=4", "--set", "policy.generation.max_new_tokens=16",
            "--set", "data.categories=null", "--set", "data.max_train_tasks=null"]
    parent = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while _steps_written(child_out) < 2:
            assert parent.poll() is None, f"benchmark ended before two steps:\n{parent.stdout.read()}"
            assert time.monotonic() < deadline, "no two steps within 240 s"
            time.sleep(0.1)
        (child,) = pids_mentioning(str(child_out))  # only the child has its result file on its command line
        os.kill(child, signal.SIGKILL)
        stdout, _ = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()

    report = json.loads(out.read_text())
    run = report["runs"]["eager"]
    assert run["exit_code"] == -signal.SIGKILL
    assert run["complete"] is False
    timed = run["summary"]["per_step"]
    assert [r["step"] for r in timed][:1] == [2] and 4 not in [r["step"] for r in timed]
    assert all(r["training_s"] > 0 and r["real_tokens"] > 0 and r["mfu_training"] > 0 for r in timed)
    assert report["summary"]["eager"]["complete"] is False
    assert report["summary"]["eager"]["training_s"] > 0
    assert "stopped before its last step" in stdout
