"""Tool-calling traces to rows for TRL's SFTTrainer: the warm start's examples.

A trace is one JSON object per line (task_id, category, tools, messages, tool_calls).
Rows keep exactly what a rollout sees: one message shape, arguments re-serialised the
way the chat template's `tojson` writes them, and nothing a prefilled rollout could not
generate. Traces over `warm_start.max_length` tokens are dropped and counted, never cut.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ..config.schema import TrainerConfig
from ..data.jsonl import json_lines
from ..errors import InvalidDataError

ROLES = ("system", "user", "assistant", "tool")


class _Unusable(Exception):
    """A well-formed trace that cannot teach what a rollout does; dropped and counted under its reason."""



def load_traces(path: str | Path) -> list[dict[str, Any]]:
    """The trace file's objects; a malformed line is InvalidDataError naming the file and line."""
    where = str(path)
    traces = []
    for line_no, row in json_lines(path, "traces file"):
        if not isinstance(row, dict):
            raise InvalidDataError(where, line_no, f"expected a JSON object, got {type(row).__name__}")
        messages, tools = row.get("messages"), row.get("tools")
        if not isinstance(messages, list) or not messages:
            raise InvalidDataError(where, line_no, "field 'messages' must be a non-empty list")
        if not isinstance(tools, list):
            raise InvalidDataError(where, line_no, "field 'tools' must be a list of tool schemas")
        for n, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise InvalidDataError(where, line_no, f"messages[{n}] needs a 'role' in {', '.join(ROLES)}")
        traces.append({**row, "_line": line_no})
    if not traces:
        raise InvalidDataError(where, None, "no traces in file")
    return traces


def _arguments_text(arguments: Any) -> str:
    """Arguments as the template's `tojson` renders a dict (json.dumps, ensure_ascii=False)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            raise _Unusable("tool call arguments are not JSON") from None
    if not isinstance(arguments, dict):
        raise _Unusable("tool call arguments are not a JSON object")
    return json.dumps(arguments, ensure_ascii=False)


def _normalise_call(call: Any) -> dict[str, Any]:
    fn = call.get("function", call) if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise _Unusable("tool call without a name")
    return {"type": "function", "function": {"name": fn["name"], "arguments": _arguments_text(fn.get("arguments"))}}


def normalise_trace(trace: dict[str, Any], prefill_tool_call: bool) -> tuple[list[dict[str, Any]], str]:
    """(messages, tools as JSON text) in one shape for every row.

    One shape matters: `datasets` stores rows in Arrow, which would give every
    message every key seen in any row (and every arguments object every
    argument name) filled with nulls, and the template would render those.
    So each message is {role, content, tool_calls} with arguments as JSON text
    (the template writes text arguments verbatim) and tools as JSON text,
    which TRL decodes before rendering.
    """
    messages: list[dict[str, Any]] = []
    for message in trace["messages"]:
        role = message["role"]
        content = message.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            if role != "tool":
                raise _Unusable(f"{role} content is not text")
            content = str(content)  # what TRL's tool loop does with a tool's return value
        calls = (message.get("tool_calls") or []) if role == "assistant" else []
        messages.append({"role": role, "content": content,
                         "tool_calls": [_normalise_call(c) for c in calls] if calls else None})
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not assistant:
        raise _Unusable("no assistant turn")
    first = messages[assistant[0]]
    if prefill_tool_call and (first["content"] or not first["tool_calls"]):
        raise _Unusable("first assistant turn is not a bare tool call (prefill_tool_call forces one)")
    return messages, json.dumps(trace["tools"], ensure_ascii=False)


def prepare_examples(traces: list[dict[str, Any]], tokenizer: Any, cfg: TrainerConfig
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows for SFTTrainer ({messages, tools}) and what was dropped, after the length filter and
    the `max_examples` sample. `tokenizer` carries the training template."""
    ws = cfg.warm_start
    prefill = cfg.env.workplace_assistant.prefill_tool_call
    kept: list[tuple[dict[str, Any], int]] = []
    too_long = 0
    unusable: dict[str, int] = {}
    for trace in traces:
        try:
            messages, tools = normalise_trace(trace, prefill)
        except _Unusable as why:
            unusable[str(why)] = unusable.get(str(why), 0) + 1
            continue
        ids = tokenizer.apply_chat_template(messages, tools=json.loads(tools), tokenize=True, return_dict=True)
        length = len(ids["input_ids"])
        if length > ws.max_length:
            too_long += 1
            continue
        kept.append(({"messages": messages, "tools": tools}, length))
    available = len(kept)
    if ws.max_examples is not None and ws.max_examples < len(kept):
        chosen = sorted(random.Random(cfg.grpo.seed).sample(range(len(kept)), ws.max_examples))
        kept = [kept[i] for i in chosen]
    lengths = [n for _, n in kept]
    stats = {"traces_read": len(traces), "dropped_too_long": too_long, "dropped_unusable": unusable,
             "available": available, "examples": len(kept), "tokens": sum(lengths),
             "max_tokens": max(lengths, default=0)}
    return [row for row, _ in kept], stats
