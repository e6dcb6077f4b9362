"""Turn any exception into the failure report the pipeline reads.

`<log_dir>/failure.json` = {"type", "message", "step", "exception"}; the type
decides the pipeline's retry policy, so classification looks through the
whole exception chain (Ray wraps a worker's OOM, for example) and prefers the
most specific cause.
"""

from __future__ import annotations

import errno
import json
import time
import traceback
from pathlib import Path
from typing import Any

from .errors import TrainerError

OOM_TEXTS = ("CUDA out of memory", "CUDA error: out of memory", "DefaultCPUAllocator: can't allocate memory",
             "No available memory for the cache blocks", "OutOfMemoryError")
RAY_TEXTS = ("ActorDiedError", "RaySystemError", "SYSTEM_ERROR", "GCS", "raylet", "RayActorError",
             "Failed to connect to GCS")

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


def classify(exc: BaseException) -> str:
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, TrainerError):
            return e.failure_type
    for e in chain:
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
            return "OutOfMemory"
        if any(t in str(e) for t in OOM_TEXTS):
            return "OutOfMemory"
    for e in chain:
        # A full disk or a file-size limit while writing a checkpoint: retrying after space
        # is freed (or on another attempt) can succeed, unlike a generic crash.
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return "StorageError"
    for e in chain:
        response = getattr(e, "response", None)
        if getattr(response, "status_code", None) == 429 or "429 Too Many Requests" in str(e):
            return "RateLimited"
    for e in chain:
        module = type(e).__module__ or ""
        if module.startswith("ray.") or any(t in f"{type(e).__name__}: {e}" for t in RAY_TEXTS):
            return "RayFailure"
    for e in chain:
        module = type(e).__module__ or ""
        if module.startswith("yaml"):
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
