"""`grpo_trainer verify`: NeMo Gym rollouts (Responses output items) scored by our environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_trainer.verify import function_calls, verify_rollouts

TRAINER_ROOT = Path(__file__).resolve().parents[1]
SHARED_EXAMPLE = Path("/work/shared/data/workplace_assistant/nemo_gym/example.jsonl")
EXAMPLE = (SHARED_EXAMPLE if SHARED_EXAMPLE.is_file()
           else TRAINER_ROOT / "grpo_trainer/workplace/data/nemo_gym/example.jsonl")


def _tasks() -> list[dict]:
    return [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]


def _wrong(call: dict) -> dict:
    """The same tool with an argument that leads to another final state."""
    args = json.loads(call["arguments"])
    if "new_value" in args:
        args["new_value"] = "definitely not the requested value"
    elif "body" in args:
        args["body"] = "A different reply."
    else:
        key = next(k for k in args if k.endswith("_id"))
        args[key] = "00000001" if args[key] != "00000001" else "00000002"
    return {"name": call["name"], "arguments": json.dumps(args)}


def _rollout(task: dict, calls: list[dict], recorded: float | None = None) -> dict:
    """A rollout as NeMo Gym writes it: the task's fields plus a Responses object."""
    output: list[dict] = [{"type": "reasoning", "id": "rs_0", "summary": []}]
    for i, call in enumerate(calls):
        output.append({"type": "function_call", "name": call["name"], "arguments": call["arguments"],
                       "call_id": f"call_{i}", "id": f"fc_{i}", "status": "completed"})
        output.append({"type": "function_call_output", "call_id": f"call_{i}", "output": "{}"})
    output.append({"type": "message", "role": "assistant", "id": "msg_0",
                   "content": [{"type": "output_text", "text": "Done.", "annotations": []}]})
    row = {**task, "response": {"id": "resp_0", "object": "response", "output": output}}
    if recorded is not None:
        row["reward"] = recorded
    return row


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_function_calls_keep_only_function_call_items() -> None:
    items = _rollout(_tasks()[0], _tasks()[0]["ground_truth"])["response"]["output"]
    expected = [{"name": c["name"], "arguments": c["arguments"]} for c in _tasks()[0]["ground_truth"]]
    assert function_calls(items) == expected


def test_replayed_ground_truth_scores_one_and_a_wrong_final_call_zero(tmp_path: Path) -> None:
    tasks = _tasks()
    good = [_rollout(t, t["ground_truth"]) for t in tasks]
    bad = [_rollout(t, t["ground_truth"][:-1] + [_wrong(t["ground_truth"][-1])]) for t in tasks]
    tasks_file = _write(tmp_path / "tasks.jsonl", tasks)
    result = verify_rollouts(_write(tmp_path / "good.jsonl", good), tasks_file)
    assert [r["reward"] for r in result["rollouts"]] == [1.0] * len(tasks)
    assert result["summary"]["mean_reward"] == 1.0
    result = verify_rollouts(_write(tmp_path / "bad.jsonl", bad), tasks_file)
    assert [r["reward"] for r in result["rollouts"]] == [0.0] * len(tasks)


def test_a_wrong_tool_as_final_call_scores_zero(tmp_path: Path) -> None:
    tasks = _tasks()
    read_only = {"name": "company_directory_find_email_address", "arguments": json.dumps({"name": "carlos"})}
    rows = [_rollout(t, t["ground_truth"][:-1] + [read_only]) for t in tasks]
    result = verify_rollouts(_write(tmp_path / "r.jsonl", rows), _write(tmp_path / "t.jsonl", tasks))
    assert all(r["reward"] == 0.0 for r in result["rollouts"])


def test_recorded_rewards_are_compared(tmp_path: Path) -> None:
    t = _tasks()[0]
    rows = [_rollout(t, t["ground_truth"], recorded=1.0), _rollout(t, t["ground_truth"], recorded=0.0)]
    result = verify_rollouts(_write(tmp_path / "r.jsonl", rows), _write(tmp_path / "t.jsonl", [t]))
    assert result["summary"]["num_with_recorded_reward"] == 2
    assert result["summary"]["num_disagreements"] == 1
    assert result["summary"]["disagreements"][0]["line"] == 2


def test_cli_exit_codes(tmp_path: Path) -> None:
    tasks = _tasks()
    tasks_file = _write(tmp_path / "t.jsonl", tasks)
    good = _write(tmp_path / "good.jsonl", [_rollout(t, t["ground_truth"], recorded=1.0) for t in tasks])
    env_cmd = [sys.executable, "-m", "grpo_trainer", "verify"]
    args = [str(good), "--tasks", str(tasks_file), "--json", "--out", str(tmp_path / "o.jsonl")]
    run = subprocess.run([*env_cmd, *args], capture_output=True, text=True, cwd=TRAINER_ROOT)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["summary"]["mean_reward"] == 1.0
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == len(tasks)
    disagree = _write(tmp_path / "d.jsonl", [_rollout(tasks[0], [], recorded=1.0)])
    run = subprocess.run(env_cmd + [str(disagree), "--tasks", str(tasks_file)], capture_output=True, text=True,
                         cwd=TRAINER_ROOT)
    assert run.returncode == 1
    unknown = _write(tmp_path / "u.jsonl", [{**_rollout(tasks[0], []), "id": 999}])
    run = subprocess.run(env_cmd + [str(unknown), "--tasks", str(tasks_file)], capture_output=True, text=True,
                         cwd=TRAINER_ROOT)
    assert run.returncode == 2 and "999" in run.stderr


@pytest.mark.parametrize("shape", ["bare_output", "response_list"])
def test_other_rollout_shapes(tmp_path: Path, shape: str) -> None:
    t = _tasks()[1]
    row = _rollout(t, t["ground_truth"])
    items = row.pop("response")["output"]
    row["output" if shape == "bare_output" else "response"] = items
    result = verify_rollouts(_write(tmp_path / "r.jsonl", [row]), _write(tmp_path / "t.jsonl", [t]))
    assert result["rollouts"][0]["reward"] == 1.0
