"""Workplace accuracy from a NeMo RL trajectory-collection run (stdlib only).

NeMo RL with `env.nemo_gym.is_trajectory_collection=true` runs NeMo Gym rollouts without training
and appends one JSON object per rollout to `<logger.log_dir>/exp_NNN/trajectory_collection.jsonl`.
The workplace reward is binary (1 when the final databases match the ground truth), so accuracy is
the mean reward. Categories come from the rollout, else from the task file by id. Writes the same
eval JSON as the built-in trainer's `evaluate` (accuracy, per_category, num_tasks).

    python trajectory_accuracy.py --log-dir DIR --tasks TASKS.jsonl --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _reward(row: dict[str, Any]) -> float | None:
    for key in ("reward", "total_reward"):
        value = row.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    response = row.get("response")
    if isinstance(response, dict) and isinstance(response.get("reward"), (int, float)):
        return float(response["reward"])
    return None


def _task_id(row: dict[str, Any]) -> str | None:
    for key in ("id", "task_id", "idx"):
        if key in row:
            return str(row[key])
    return None


def newest_trajectories(log_dir: Path) -> Path:
    """The newest exp_NNN's file: every (re)start of NeMo RL writes a new exp_NNN."""
    files = sorted(log_dir.glob("exp_*/trajectory_collection.jsonl"))
    if not files:
        raise FileNotFoundError(f"no exp_*/trajectory_collection.jsonl under {log_dir}")
    return files[-1]


def accuracy(trajectories: Path, tasks: Path) -> dict[str, Any]:
    categories = {}
    for line in tasks.read_text(encoding="utf-8").splitlines():
        if line.strip():
            task = json.loads(line)
            categories[str(task.get("id"))] = task.get("category")
    rewards: list[float] = []
    by_category: dict[str, list[float]] = {}
    for line in trajectories.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        reward = _reward(row)
        if reward is None:
            raise ValueError(f"{trajectories}: a rollout without a reward: {line[:200]}")
        rewards.append(reward)
        category = row.get("category") or categories.get(_task_id(row) or "")
        if category:
            by_category.setdefault(str(category), []).append(reward)
    if not rewards:
        raise ValueError(f"{trajectories}: no rollouts")
    return {
        "accuracy": sum(rewards) / len(rewards),
        "per_category": {c: sum(v) / len(v) for c, v in sorted(by_category.items())},
        "num_tasks": len(rewards),
        "source": str(trajectories),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log-dir", required=True, type=Path)
    ap.add_argument("--tasks", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    result = accuracy(newest_trajectories(a.log_dir), a.tasks)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2), encoding="utf-8")
    tmp.replace(a.out)
    print(json.dumps({k: result[k] for k in ("accuracy", "num_tasks")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
