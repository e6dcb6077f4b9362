"""Reading a JSONL file of objects, where every problem is an InvalidDataError naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grpo_trainer.errors import InvalidDataError


def json_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; `what` names the file in messages."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidDataError(where, None, f"{what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDataError(where, None, f"cannot read {what}: {exc}") from None
    # split("\n"), not splitlines(): JSON text may hold U+2028 and friends raw.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidDataError(where, line_no, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
