"""Two Ray Train workers on a CPU machine (gloo): real data-parallel GRPO.

One private Ray head on loopback (2 CPUs), the trainer CLI with
`cluster.num_workers=2`, the tiny random model. It checks what multi-GPU runs
rely on: accelerate really trains with world size 2, each worker gets its own
slice of the step (the same global batch as one process), rank 0 alone writes
metrics and `step_N` checkpoints (with every rank's RNG state), validation
neither hangs nor logs twice, and a second launch resumes the step counter.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from grpo_trainer.training.local_ray import LocalRayHead, start_local_head

from .conftest import (
    CPU_CONFIG,
    TRAINER_ROOT,
    run_trainer,
    tiny_overrides,
    trainer_command,
    trainer_env,
    trainer_events,
)

# 2 tasks x 2 rollouts per step: with 2 workers each gets one task's group.
BATCH = ["grpo.num_prompts_per_step=2", "grpo.num_generations_per_prompt=2", "grpo.max_val_samples=3"]


@pytest.fixture
def ray_head_2cpu():
    head = start_local_head(num_cpus=2)
    try:
        yield head
    finally:
        head.stop()


def _train_on_ray(head: LocalRayHead, run_dir: Path, tiny_model, task_files, *extra: str) -> str:
    env = trainer_env()
    env.update(head.client_env())
    args = ["train", "--config", str(CPU_CONFIG), *tiny_overrides(tiny_model, *task_files, run_dir, steps=4),
            *BATCH, "cluster.num_workers=2", *extra]
    result = subprocess.run(trainer_command(*args), env=env, cwd=TRAINER_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]


def test_two_workers_train_checkpoint_and_resume(ray_head_2cpu, tiny_model, task_files, tmp_path):
    run_dir = tmp_path / "run"
    ckpt_dir = run_dir / "checkpoints"

    # First launch: steps 1-2, then save and stop (a pipeline segment).
    out = _train_on_ray(ray_head_2cpu, run_dir, tiny_model, task_files, "grpo.stop_after_step=2")
    assert "Ray Train: 2 worker(s)" in out
    assert "world size 2 (MULTI_CPU" in out
    assert "2 rollouts per device x 1 accumulation steps x 2 workers = 4 rollouts per step" in out
    assert out.count("Saved checkpoint") == 1  # rank 0 only
    # Ray's own actors (Ray Train's controller, ...) write to logs/ray.log, not to the trainer's output.
    assert "(TrainController" not in out and "(TrainController" in (run_dir / "logs" / "ray.log").read_text()
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["step_2"]
    step2 = ckpt_dir / "step_2"
    info = json.loads((step2 / "training_info.json").read_text())
    assert info["total_steps"] == 2 and info["world_size"] == 2 and "val:accuracy" in info
    optimizer = sorted(p.name for p in (step2 / "policy" / "optimizer").iterdir())
    assert optimizer == ["optimizer.pt", "rng_state_0.pth", "rng_state_1.pth", "scheduler.pt"]
    assert (step2 / "policy" / "weights" / "model.safetensors").is_file()

    # Second launch with the same checkpoint_dir: resumes at step 2, runs 3-4.
    out = _train_on_ray(ray_head_2cpu, run_dir, tiny_model, task_files)
    assert f"Resuming from {step2}" in out
    assert "training running from step 2" in out
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["step_2", "step_4"]
    state = json.loads((ckpt_dir / "step_4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    # Rank 0 alone reports: one running event per launch and one event per checkpoint.
    events = trainer_events(run_dir / "logs")
    assert [(e["event"], e["step"]) for e in events] == [("running", 0), ("checkpoint_saved", 2),
                                                         ("running", 2), ("checkpoint_saved", 4)]

    records = _records(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "validation"]
    # One line per step and per validation, not one per rank.
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert [r["step"] for r in val] == [0, 2, 4]
    assert all(r["validation/num_samples"] == 3 for r in val)
    for r in train:
        shares = r["train/task_ids_by_rank"]
        assert len(shares) == 2 and all(len(s) == 2 for s in shares)  # 2 rollouts on each worker
        assert len({s[0] for s in shares}) == 2  # each worker its own task's group
        assert r["train/task_ids"] == shares[0] + shares[1]
        # each worker's own rollouts' rewards, gathered in the same order as their task ids
        assert len(r["train/rollout_rewards"]) == 4
        assert abs(sum(r["train/rollout_rewards"]) / 4 - r["train/reward"]) < 1e-3

    # The same global batch as one process: same tasks per step, in the same order.
    ref_dir = tmp_path / "single"
    single = run_trainer("train", "--config", str(CPU_CONFIG),
                         *tiny_overrides(tiny_model, *task_files, ref_dir, steps=4), *BATCH,
                         "grpo.stop_after_step=2", "grpo.val_at_start=false", "grpo.val_period=100",
                         "checkpointing.enabled=false")
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    assert "world size 1" in single.stdout
    ref = [r for r in _records(ref_dir) if r["kind"] == "train"]
    assert [r["train/task_ids"] for r in ref] == [r["train/task_ids"] for r in train[:2]]


def test_two_workers_share_one_probed_pool(ray_head_2cpu, tiny_model, task_files, tmp_path):
    """data.pool_selection=pass_rate with 2 workers: rank 0 probes, both train from the pool it wrote."""
    out = _train_on_ray(ray_head_2cpu, tmp_path, tiny_model, task_files, "data.max_train_tasks=4",
                        "data.pool_selection=pass_rate", "data.pool_probe_tasks=4")
    assert out.count("choosing 4 training tasks by pass rate") == 1
    pool = json.loads((tmp_path / "checkpoints" / "training_pool.json").read_text())
    drawn = {t for r in _records(tmp_path) if r["kind"] == "train" for t in r["train/task_ids"]}
    assert drawn == set(pool["task_ids"]) and len(drawn) == 4
