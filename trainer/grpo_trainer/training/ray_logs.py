"""Ray's own output goes to `<log_dir>/ray.log`, not into trainer.log.

The driver of a Ray run gets every Ray process's stdout/stderr forwarded
(`log_to_driver`): our training workers' lines (step lines, validation,
warnings), which trainer.log must keep (the pipeline reads progress and hangs
from it), and the lines of Ray's own actors and daemons (Ray Train's
controller, its placement-group cleaner, the GCS...), which on a default CPU
run were most of trainer.log. Ray has no setting that separates the two, so
the driver's forwarding handler is wrapped: lines of the training workers are
printed as before; everything else is appended to ray.log, and is echoed to
trainer.log too when it looks like a real error: a raylet message about a
worker killed or a node out of memory, a Python traceback, or any known failure text
(contracts/failure-texts.json, which the pipeline's classifier reads in
trainer.log). Prefixes are printed without colour codes.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..failures import FAILURE_TEXTS

# Ray Train's actors that run our training function (its controller and helpers are Ray's own).
TRAINING_ACTORS = frozenset({"RayTrainWorker"})
HANDLER = "ray_print_logs"  # the name ray.init gives its forwarding handler
# What the raylet says when it ends a worker (memory monitor, crashes); not its metrics-agent chatter.
RAYLET_SERIOUS = re.compile(r"kill|died|dead|crash|out of memory|low on memory|\bOOM\b", re.IGNORECASE)


def is_real_error(data: dict[str, Any]) -> bool:
    text = "\n".join(data.get("lines") or [])
    if data.get("pid") == "raylet" and RAYLET_SERIOUS.search(text):
        return True
    return "Traceback (most recent call last)" in text or any(t.pattern.search(text) for t in FAILURE_TEXTS)


def _prefix(data: dict[str, Any]) -> str:
    who = data.get("actor_name") or data.get("task_name") or ""
    ip = data.get("ip")
    where = f", ip={ip}" if ip and ip != data.get("localhost") else ""
    return f"({who + ' ' if who else ''}pid={data.get('pid')}{where})"


def route_ray_logs(log_dir: str | Path) -> Callable[[], None] | None:
    """Wrap the forwarding handler of the connected driver (call after ray.init); returns a function
    that closes ray.log (after ray.shutdown), or None when this Ray has no such handler (its output
    then stays as it was)."""
    os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
        from ray._private.worker import filter_autoscaler_events

        to_driver = next(h for name, h in dispatcher.handlers if name == HANDLER)
    except (ImportError, AttributeError, StopIteration):
        print("warning: cannot separate Ray's own log lines from the trainer's in this Ray version; "
              "they stay in this log", flush=True)
        return None
    path = Path(log_dir) / "ray.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    sink: IO[str] = open(path, "a", encoding="utf-8")
    lock = threading.Lock()

    def handle(data: dict[str, Any]) -> None:
        if data.get("actor_name") in TRAINING_ACTORS or sink.closed:
            to_driver(data)
            return
        lines = data.get("lines") or []
        if data.get("pid") == "autoscaler":  # its status dumps: only the events, as Ray prints them
            lines = list(filter_autoscaler_events(lines))
        with lock:
            prefix = _prefix(data)
            sink.writelines(f"{prefix} {line}\n" for line in lines)
            sink.flush()
        if is_real_error(data):
            to_driver(data)

    dispatcher.remove_handler(HANDLER)
    dispatcher.add_handler(HANDLER, handle)
    print(f"Ray's own log lines: {path} (errors also here)", flush=True)

    def close() -> None:  # after ray.shutdown(), which removes the handler itself
        with lock:
            sink.close()

    return close
