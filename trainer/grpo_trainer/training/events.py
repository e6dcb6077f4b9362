"""`<logger.log_dir>/trainer_events.jsonl`: what the trainer tells the pipeline about its state.

One JSON object per line, exactly as contracts/trainer-events.schema.json
fixes them, so the pipeline follows progress and measures recovery from data
instead of matching the human-readable log lines (which stay, for people):

* `running`: the model is loaded and training is under way from `step`;
* `checkpoint_saved`: `step_N` is complete on disk (renamed from `tmp_step_N`)
  and the trainer's own retention has run, deleting the steps in `removed`.

Only rank 0 writes (the callers make sure of it). Each line goes out in one
`write` on a file opened for appending, so a reader never sees half a line
from a live writer and a killed trainer leaves whole lines behind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .. import contracts

# The file name is part of the contract too (the schema's "x-file").
EVENTS_FILE: str = contracts.load("trainer-events.schema.json")["x-file"]


def events_path(log_dir: str | Path) -> Path:
    return Path(log_dir) / EVENTS_FILE


def _append(log_dir: str | Path, event: dict[str, Any]) -> None:
    path = events_path(log_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(event) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # unbuffered: the line is in the file (page cache) when this returns
    finally:
        os.close(fd)


def running(log_dir: str | Path, step: int) -> None:
    _append(log_dir, {"event": "running", "step": int(step), "time": time.time(), "pid": os.getpid()})


def checkpoint_saved(log_dir: str | Path, step: int, path: str | Path, removed: list[int]) -> None:
    _append(log_dir, {"event": "checkpoint_saved", "step": int(step), "path": str(Path(path).resolve()),
                      "time": time.time(), "removed": [int(s) for s in removed]})


def read_events(log_dir: str | Path) -> list[dict[str, Any]]:
    """Every event so far (for tests and tools); a missing file means none yet."""
    path = events_path(log_dir)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
