"""Segment handoff: the pipeline's training segments continue in one trainer process.

The pipeline trains in durable segments (one Temporal activity per segment).
Starting a new trainer per segment costs imports, model load and optimizer
restore each time, so with `grpo.segment_handoff_dir` set the trainer does not
exit at `grpo.stop_after_step`: once that step is done (metrics logged, the
checkpoint renamed into place) it writes ``paused-<step>.json`` and waits for
the next segment's ``continue-<step>.json``:

* ``{"stop_after_step": N}``: train on to step N and pause there again;
* ``{"exit": true}``: exit 0 (written by the trainer itself when nobody
  answered within `grpo.segment_handoff_timeout_s`, or by the pipeline).

Both answers are created exclusively (write a temporary file, then ``link``),
so exactly one of "the pipeline continued" and "the trainer gave up" wins, and
every rank of a multi-worker run reads the same decision from the shared run
directory. A trainer waits only at a step that has a complete checkpoint, so
exiting there loses nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Decision:
    stop_after_step: int | None  # None: exit

    @property
    def exit(self) -> bool:
        return self.stop_after_step is None


def paused_path(handoff_dir: str | Path, step: int) -> Path:
    return Path(handoff_dir) / f"paused-{step}.json"


def continue_path(handoff_dir: str | Path, step: int) -> Path:
    return Path(handoff_dir) / f"continue-{step}.json"


def _write_atomic(path: Path, payload: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def create_exclusive(path: Path, payload: dict[str, object]) -> bool:
    """Create `path` with `payload` unless it exists; True when this call created it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _read_decision(path: Path) -> Decision | None:
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if raw.get("exit"):
        return Decision(None)
    return Decision(int(raw["stop_after_step"]))


def wait_for_next_segment(handoff_dir: str | Path, step: int, *, timeout_s: float, is_main: bool,
                          poll_s: float = 0.05) -> Decision:
    """Announce the pause at `step` (main rank) and wait for the decision."""
    directory = Path(handoff_dir)
    directory.mkdir(parents=True, exist_ok=True)
    answer = continue_path(directory, step)
    if is_main:
        _write_atomic(paused_path(directory, step), {"step": step, "pid": os.getpid(), "time": time.time()})
    deadline = time.monotonic() + timeout_s
    while True:
        decision = _read_decision(answer)
        if decision is not None:
            return decision
        if is_main and time.monotonic() >= deadline:
            # Only the main rank gives up, and only if the pipeline did not answer first.
            create_exclusive(answer, {"exit": True, "reason": f"no next segment within {timeout_s:g}s"})
            continue
        time.sleep(poll_s)
