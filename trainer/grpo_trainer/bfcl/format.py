"""Our tool-call format on BFCL's side, without bfcl_eval imports (so the trainer's tests cover it).

`extract_calls` reads the `<tool_call>` JSON blocks of a reply into bfcl's
AST form; `as_tools` turns bfcl's function documents into the tools our
chat template renders.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ..model.chat_format import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

_CALL_RE = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|$)", re.S)


def extract_calls(text: str) -> list[dict[str, Any]]:
    """`<tool_call>` JSON blocks of a reply as `[{name: arguments}]` (bfcl's AST form).

    No block at all is an empty list (no call). A block that is not a JSON
    object with a string `name` and object `arguments` raises, which bfcl
    records as a decoding failure. A last block cut off by the token budget is
    read if its JSON is complete.
    """
    calls = []
    for match in _CALL_RE.finditer(text):
        body = match.group(1).strip()
        if not body:
            continue
        call = json.loads(body)
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ValueError(f"tool call without a name: {body[:200]}")
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):
            arguments = json.loads(arguments)
        if not isinstance(arguments, dict):
            raise ValueError(f"tool call arguments are not an object: {body[:200]}")
        calls.append({call["name"]: arguments})
    return calls


def as_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """bfcl function documents as chat-template tools (names and types unchanged)."""
    tools = []
    for fn in copy.deepcopy(functions):
        params = fn.setdefault("parameters", {})
        props = params.setdefault("properties", {})
        for spec in props.values():
            if isinstance(spec, dict):
                spec.setdefault("type", "string")
        params.setdefault("required", [])
        fn.setdefault("description", "")
        tools.append({"type": "function", "function": fn})
    return tools
