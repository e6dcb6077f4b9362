"""Recompute the workplace reward of rollouts recorded in NeMo Gym's format.

NeMo Gym's rollout files (``ng_collect_rollouts`` / ``gym eval run`` output,
NeMo RL's ``trajectory_collection.jsonl``) hold one JSON object per rollout:
the task's fields plus ``response``, an OpenAI Responses object whose
``output`` list mixes ``message``, ``reasoning``, ``function_call`` and
``function_call_output`` items, and usually the ``reward`` Gym gave it. Gym's
verifier takes the ``function_call`` items (``name`` plus ``arguments`` as a
JSON string), replays them and the task's ground truth on fresh databases, and
compares the final states. ``verify_rollouts`` does the same with our
environment (:mod:`grpo_trainer.workplace.verifier`), so a user can check that
both environments score the same rollouts the same way.

Accepted rollout shapes, per line: ``{"response": {"output": [...]}}`` (Gym),
``{"output": [...]}`` (a bare Responses object) or ``{"response": [...]}``.
The task is found by ``id`` (also ``task_id``, or
``responses_create_params.metadata.id``) in the tasks file; a rollout that
carries its own ``ground_truth`` and no id is scored against that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidDataError
from .workplace.verifier import reward

ROLLOUT_ID_KEYS = ("id", "task_id")


def _read_jsonl(path: str | Path) -> list[tuple[int, Any]]:
    rows = []
    p = Path(path)
    if not p.is_file():
        raise InvalidDataError(str(path), None, "file not found")
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((lineno, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InvalidDataError(str(path), lineno, f"not JSON ({exc})") from None
    return rows


def output_items(rollout: Mapping[str, Any]) -> list[Any] | None:
    """The Responses ``output`` list of a rollout, or None if it has none."""
    response = rollout.get("response")
    if isinstance(response, Mapping) and isinstance(response.get("output"), list):
        return list(response["output"])
    if isinstance(response, list):
        return list(response)
    if isinstance(rollout.get("output"), list):
        return list(rollout["output"])
    return None


def function_calls(items: Iterable[Any]) -> list[dict[str, Any]]:
    """The ``function_call`` items as ``{name, arguments}``, in order (what Gym's verify replays)."""
    calls = []
    for item in items:
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            arguments = item.get("arguments", "{}")
            calls.append({"name": item.get("name"), "arguments": arguments})
    return calls


def rollout_id(rollout: Mapping[str, Any]) -> Any:
    for key in ROLLOUT_ID_KEYS:
        if rollout.get(key) is not None:
            return rollout[key]
    params = rollout.get("responses_create_params")
    if isinstance(params, Mapping) and isinstance(params.get("metadata"), Mapping):
        return params["metadata"].get("id")
    return None


def _key(value: Any) -> str:
    # Ids are ints in Gym's files and may be strings elsewhere: match either.
    return str(value)


def verify_rollouts(rollouts_path: str | Path, tasks_path: str | Path | None) -> dict[str, Any]:
    """Score every rollout; returns ``{"rollouts": [...], "summary": {...}}``."""
    tasks: dict[str, Mapping[str, Any]] = {}
    if tasks_path is not None:
        for lineno, row in _read_jsonl(tasks_path):
            if not isinstance(row, Mapping) or "ground_truth" not in row or row.get("id") is None:
                raise InvalidDataError(str(tasks_path), lineno, "a task needs `id` and `ground_truth`")
            tasks[_key(row["id"])] = row
    results = []
    for lineno, rollout in _read_jsonl(rollouts_path):
        if not isinstance(rollout, Mapping):
            raise InvalidDataError(str(rollouts_path), lineno, "a rollout must be a JSON object")
        items = output_items(rollout)
        if items is None:
            raise InvalidDataError(str(rollouts_path), lineno,
                                   "no Responses output list (expected `response.output`, `output` or `response`)")
        rid = rollout_id(rollout)
        task = tasks.get(_key(rid)) if rid is not None else None
        if task is not None:
            ground_truth = task["ground_truth"]
            category = task.get("category") or rollout.get("category")
        elif "ground_truth" in rollout and (rid is None or tasks_path is None):
            ground_truth = rollout["ground_truth"]
            category = rollout.get("category")
        else:
            raise InvalidDataError(str(rollouts_path), lineno,
                                   f"rollout id {rid!r} is not in {tasks_path}" if rid is not None
                                   else "rollout has neither an id nor a ground_truth")
        calls = function_calls(items)
        score = reward(calls, ground_truth)
        recorded = rollout.get("reward")
        recorded = float(recorded) if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) else None
        results.append({
            "line": lineno, "id": rid, "category": category, "reward": score, "num_function_calls": len(calls),
            "recorded_reward": recorded, "agrees": None if recorded is None else recorded == score,
        })
    return {"rollouts": results, "summary": summarise(results)}


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    per_category: dict[str, list[float]] = {}
    for r in results:
        per_category.setdefault(str(r["category"]), []).append(r["reward"])
    compared = [r for r in results if r["agrees"] is not None]
    n = len(results)
    return {
        "num_rollouts": n,
        "mean_reward": sum(r["reward"] for r in results) / n if n else 0.0,
        "per_category": {k: sum(v) / len(v) for k, v in sorted(per_category.items())},
        "num_with_recorded_reward": len(compared),
        "num_disagreements": sum(1 for r in compared if not r["agrees"]),
        "disagreements": [{"line": r["line"], "id": r["id"], "reward": r["reward"],
                           "recorded_reward": r["recorded_reward"]} for r in compared if not r["agrees"]],
    }
