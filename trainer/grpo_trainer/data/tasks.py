"""Load NeMo Gym workplace_assistant JSONL (the files NeMo RL's data paths name).

One task per non-blank line, shaped like Gym's ``example.jsonl``. Every problem
is reported as :class:`InvalidDataError` naming the file and, where there is
one, the 1-based line, so a bad data set fails before training starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpo_trainer.errors import InvalidDataError

from .jsonl import json_lines


@dataclass(frozen=True)
class Task:
    id: int | str
    messages: list[dict[str, Any]]  # responses_create_params.input: system + user
    tools: list[dict[str, Any]]  # responses_create_params.tools
    ground_truth: list[dict[str, str]]  # [{name, arguments: JSON object text}]
    category: str


class _Bad(Exception):
    """A reason a line is invalid; turned into InvalidDataError by the caller."""


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise _Bad(f"missing field '{where}{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _Bad(f"field '{where}{key}' must be {names}, got {type(value).__name__}")
    return value


def _messages(params: dict[str, Any]) -> list[dict[str, Any]]:
    messages = _field(params, "input", list, "responses_create_params.")
    if not messages:
        raise _Bad("field 'responses_create_params.input' is empty")
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
            raise _Bad(f"responses_create_params.input[{n}] needs 'role' and 'content'")
    return [dict(m) for m in messages]


def _ground_truth(row: dict[str, Any]) -> list[dict[str, str]]:
    if "ground_truth" not in row:
        raise _Bad("missing field 'ground_truth'")
    raw = row["ground_truth"]
    if isinstance(raw, str):  # Gym also accepts the list as JSON text
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _Bad(f"ground_truth is a string but not JSON ({exc.msg})") from None
    if not isinstance(raw, list):
        raise _Bad("ground_truth must be a list of {name, arguments}")
    calls = []
    for n, call in enumerate(raw):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise _Bad(f"ground_truth[{n}] needs a string 'name'")
        arguments = call.get("arguments", "{}")
        parsed = arguments
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise _Bad(f"ground_truth[{n}].arguments is not JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise _Bad(f"ground_truth[{n}].arguments must be a JSON object")
        # Keep the text as given when it is text, so replays see the same bytes.
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append({"name": call["name"], "arguments": text})
    return calls


def _task(row: Any) -> Task:
    if not isinstance(row, dict):
        raise _Bad(f"expected a JSON object, got {type(row).__name__}")
    params = _field(row, "responses_create_params", dict, "")
    return Task(
        id=_field(row, "id", (int, str), ""),
        messages=_messages(params),
        tools=list(_field(params, "tools", list, "responses_create_params.")),
        ground_truth=_ground_truth(row),
        category=_field(row, "category", str, ""),
    )


def load_tasks(path: str | Path) -> list[Task]:
    where = str(path)
    tasks: list[Task] = []
    for line_no, row in json_lines(path):
        try:
            tasks.append(_task(row))
        except _Bad as exc:
            raise InvalidDataError(where, line_no, str(exc)) from None
    if not tasks:
        raise InvalidDataError(where, None, "no tasks in file")
    return tasks
