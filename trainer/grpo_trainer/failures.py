"""Turn any exception into the failure report the pipeline reads.

`<log_dir>/failure.json` (contracts/failure.schema.json) = {"type", "message",
"step", "time", "traceback"[, "retry_after"]}; the type decides the
pipeline's retry policy, so classification looks through the whole exception
chain (Ray wraps a worker's OOM, for example) and prefers the most specific
cause. Known failure texts come from contracts/failure-texts.json, the table
the pipeline's classifier reads too, so both sides name a text the same way.
"""

from __future__ import annotations

import errno
import json
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import contracts
from .errors import TrainerError

# Categories looked for across the whole chain, most specific first: an OOM
# inside a Ray worker is an OOM (smaller batch helps), not a Ray failure.
PRECEDENCE = ("OutOfMemory", "StorageError", "RateLimited", "RayFailure", "InvalidConfig")


@dataclass(frozen=True)
class FailureText:
    id: str
    type: str
    pattern: re.Pattern[str]


# The table's flags, in the letters JavaScript uses (the pipeline compiles the same rows).
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE}


def _load_texts() -> tuple[FailureText, ...]:
    texts = []
    for row in contracts.load("failure-texts.json")["rows"]:
        unknown = set(row["flags"]) - set(_FLAGS)
        if unknown:
            raise ValueError(f"failure-texts.json row {row['id']}: unsupported flags {sorted(unknown)}")
        flags = 0
        for letter in row["flags"]:
            flags |= _FLAGS[letter]
        texts.append(FailureText(row["id"], row["type"], re.compile(row["pattern"], flags)))
    return tuple(texts)


FAILURE_TEXTS = _load_texts()

# Set by the training loop so a report can say where the run died.
PROGRESS: dict[str, int | None] = {"step": None}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend([current.__cause__, current.__context__])  # type: ignore[list-item]
        inner = getattr(current, "cause", None)  # ray.exceptions.RayTaskError and friends
        if isinstance(inner, BaseException):
            stack.append(inner)
    return seen


def text_type(text: str) -> str | None:
    """The failure type of the first row of the shared table whose pattern matches."""
    for row in FAILURE_TEXTS:
        if row.pattern.search(text):
            return row.type
    return None


def _typed(e: BaseException) -> str | None:
    """What the exception's type (not its text) says, for the categories in PRECEDENCE."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return "OutOfMemory"
    # A full disk or a file-size limit while writing a checkpoint: retrying after space
    # is freed (or on another attempt) can succeed, unlike a generic crash.
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return "StorageError"
    if getattr(getattr(e, "response", None), "status_code", None) == 429:
        return "RateLimited"
    if (type(e).__module__ or "").startswith("ray."):
        return "RayFailure"
    return None


def classify(exc: BaseException) -> str:
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, TrainerError):
            return e.failure_type
    # Per exception: what its type says and what its text says (first matching row).
    found = [(_typed(e), text_type(f"{type(e).__name__}: {e}")) for e in chain]
    for category in PRECEDENCE:
        if any(category in kinds for kinds in found):
            return category
    for e in chain:
        if (type(e).__module__ or "").startswith("yaml"):
            return "InvalidConfig"
    return "Unknown"


def last_logged_step(log_dir: str | Path) -> int | None:
    """The newest training step in metrics.jsonl (the driver of a Ray run
    never sees the worker's step counter directly)."""
    path = Path(log_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    step = None
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by the crash
        if record.get("kind") == "train":
            step = record.get("step")
    return step


def _retry_after(exc: BaseException) -> float | None:
    for e in _chain(exc):
        value = getattr(e, "retry_after_s", None)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def write_failure(log_dir: str | Path, exc: BaseException) -> dict[str, Any]:
    report = {
        "type": classify(exc),
        "message": f"{type(exc).__name__}: {exc}"[:4000],
        "step": PROGRESS["step"] if PROGRESS["step"] is not None else last_logged_step(log_dir),
        "time": time.time(),
        "traceback": "".join(traceback.format_exception(exc))[-8000:],
    }
    retry_after = _retry_after(exc)
    if retry_after is not None:
        report["retry_after"] = retry_after
    path = Path(log_dir)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "failure.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(path / "failure.json")
    return report
