"""Metrics sinks: `<log_dir>/metrics.jsonl`, TensorBoard, and one stdout line per step.

Names follow NeMo RL's logger tags (`train/reward`, `validation/accuracy`,
`timing/train/total_step_time`, ...), so dashboards and the pipeline read
both backends the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class MetricsLogger:
    def __init__(self, log_dir: str | Path, tensorboard: bool = True, enabled: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.log_dir / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.log_dir / "tensorboard"))

    def log(self, kind: str, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, **metrics, "time": time.time()}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def step_line(step: int, total: int, m: dict[str, Any]) -> str:
    def fmt(key: str, label: str, spec: str = ".4f") -> str:
        value = m.get(key)
        return f"{label} {value:{spec}}" if isinstance(value, (int, float)) else f"{label} -"

    return " | ".join([
        f"step {step}/{total}",
        fmt("train/reward", "reward"),
        fmt("train/loss", "loss"),
        fmt("train/mean_gen_tokens_per_sample", "gen_len", ".1f"),
        fmt("timing/train/total_step_time", "step_s", ".1f"),
        fmt("performance/tokens_per_sec", "tok/s", ".1f"),
    ])


def peak_memory_mb() -> dict[str, float]:
    """Peak virtual size and resident set of this process (Linux /proc), in MiB.

    VmPeak is what an address-space limit (RLIMIT_AS) is checked against, so
    operators can size `run.trainer_address_space_mb` from it.
    """
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmPeak", "VmHWM"):
                    out["memory/vm_peak_mb" if key == "VmPeak" else "memory/rss_peak_mb"] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out
