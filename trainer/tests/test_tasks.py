"""Loading NeMo Gym task JSONL, and the errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grpo_trainer.data.tasks import Task, load_tasks
from grpo_trainer.errors import InvalidDataError
from grpo_trainer.workplace.databases import CSV_DIR

EXAMPLE = CSV_DIR.parent / "example.jsonl"


def good_row(**changes: Any) -> dict[str, Any]:
    row = json.loads(EXAMPLE.read_text().splitlines()[0])
    row.update(changes)
    return row


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def load_error(path: Path) -> InvalidDataError:
    with pytest.raises(InvalidDataError) as info:
        load_tasks(path)
    return info.value


def test_loads_gyms_example_file() -> None:
    tasks = load_tasks(EXAMPLE)
    assert [t.id for t in tasks] == [0, 1, 2, 3, 4]
    first = tasks[0]
    assert isinstance(first, Task)
    assert first.category == "workplace_assistant_email"
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert first.messages[1]["content"].startswith("Reply to carlos's last email")
    assert len(first.tools) == 27
    assert first.ground_truth == [
        {
            "name": "email_reply_email",
            "arguments": '{"email_id": "00000057", "body": "Thanks for the update - I will get back to you tomorrow."}',
        }
    ]
    assert len(tasks[4].ground_truth) == 5


def test_ground_truth_may_be_json_text_or_hold_argument_objects(tmp_path: Path) -> None:
    as_text = good_row(ground_truth=json.dumps([{"name": "email_delete_email", "arguments": '{"email_id": "1"}'}]))
    as_object = good_row(ground_truth=[{"name": "email_delete_email", "arguments": {"email_id": "1"}}])
    tasks = load_tasks(write(tmp_path, json.dumps(as_text), "", json.dumps(as_object)))
    expected = [{"name": "email_delete_email", "arguments": '{"email_id": "1"}'}]
    assert tasks[0].ground_truth == tasks[1].ground_truth == expected


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "absent.jsonl")
    assert error.path.endswith("absent.jsonl") and error.line_no is None
    assert "absent.jsonl" in str(error) and "not found" in str(error)


def test_bad_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(good_row()), "", '{"id": 1, "responses_create_params": ')
    error = load_error(path)
    assert (error.path, error.line_no) == (str(path), 3)
    assert str(error).startswith(f"{path}:3: invalid JSON")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({k: v for k, v in good_row().items() if k != "category"}, "missing field 'category'"),
        ({k: v for k, v in good_row().items() if k != "ground_truth"}, "missing field 'ground_truth'"),
        ({k: v for k, v in good_row().items() if k != "id"}, "missing field 'id'"),
        (good_row(responses_create_params={"tools": []}), "missing field 'responses_create_params.input'"),
        (good_row(responses_create_params={"input": [{"role": "user", "content": "x"}]}), "params.tools"),
        (good_row(responses_create_params={"input": [], "tools": []}), "is empty"),
        (good_row(responses_create_params={"input": [{"content": "hi"}], "tools": []}), "input[0] needs 'role'"),
        (good_row(category=5), "field 'category' must be str"),
        (good_row(ground_truth=[{"arguments": "{}"}]), "ground_truth[0] needs a string 'name'"),
        (good_row(ground_truth=[{"name": "x", "arguments": "{oops"}]), "ground_truth[0].arguments is not JSON"),
        (good_row(ground_truth=[{"name": "x", "arguments": "[1]"}]), "must be a JSON object"),
        (good_row(ground_truth="not json"), "ground_truth is a string but not JSON"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_invalid_rows_name_file_line_and_reason(tmp_path: Path, row: Any, reason: str) -> None:
    path = write(tmp_path, json.dumps(good_row()), json.dumps(row))
    error = load_error(path)
    assert error.line_no == 2 and error.path == str(path)
    assert reason in error.reason
    assert f"{path}:2:" in str(error)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "", "  "))
    assert error.line_no is None and "no tasks" in error.reason
