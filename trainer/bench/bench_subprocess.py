"""Running a trainer command for a benchmark: its combined output and exit code, None when it timed out."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_captured(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[str, int | None]:
    try:
        proc = subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        return proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return out, None
