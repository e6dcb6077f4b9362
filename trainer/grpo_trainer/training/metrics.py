"""Metrics sinks: `<log_dir>/metrics.jsonl`, TensorBoard, W&B, and one stdout line per step.

Names follow NeMo RL's logger tags (`train/reward`, `validation/accuracy`,
`timing/train/total_step_time`, ...), so dashboards and the pipeline read
both backends the same way. Where they go besides metrics.jsonl (`report_to`)
comes from NeMo RL's logger keys: `logger.tensorboard_enabled` (events under
`<log_dir>/tensorboard`) and `logger.wandb_enabled` (W&B project/name from
`logger.wandb`). This one logger writes every sink, so TensorBoard and W&B carry
the same tags on the same step axis, validation included (TRL's own
`report_to` stays empty: it would log a second set under TRL's names).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config.schema import TrainerConfig


def report_to(cfg: TrainerConfig, env: Mapping[str, str] = os.environ) -> tuple[list[str], list[str]]:
    """The sinks this run writes besides metrics.jsonl, and warnings about those it cannot."""
    sinks = ["tensorboard"] if cfg.logger.tensorboard_enabled else []
    warnings = []
    if cfg.logger.wandb_enabled:
        if not env.get("WANDB_API_KEY") and env.get("WANDB_MODE") not in ("offline", "disabled"):
            warnings.append("logger.wandb_enabled is true but WANDB_API_KEY is not in the trainer's environment: "
                            "W&B is off for this run (set WANDB_API_KEY where the worker runs, or WANDB_MODE=offline)")
        elif importlib.util.find_spec("wandb") is None:
            warnings.append("logger.wandb_enabled is true but the wandb package is not installed in the trainer's "
                            "environment (it is not in the lock): W&B is off for this run")
        else:
            sinks.append("wandb")
    return sinks, warnings


def wandb_settings(cfg: TrainerConfig) -> dict[str, Any]:
    """wandb.init arguments: one W&B run per training run (its checkpoint dir), resumed by every segment."""
    run_key = str(Path(cfg.checkpointing.checkpoint_dir).resolve())
    return {"project": cfg.logger.wandb.project, "name": cfg.logger.wandb.name,
            "id": hashlib.sha256(run_key.encode()).hexdigest()[:16], "resume": "allow",
            "dir": cfg.logger.log_dir, "config": dataclasses.asdict(cfg)}


class MetricsLogger:
    def __init__(self, log_dir: str | Path, tensorboard: bool = True, enabled: bool = True,
                 wandb: dict[str, Any] | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self._tb = None
        self._wandb: Any = None
        if not enabled:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(self.log_dir / "metrics.jsonl", "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.log_dir / "tensorboard"))
        if wandb is not None:
            import wandb as wandb_module

            self._wandb = wandb_module.init(**wandb)

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
        if self._wandb is not None:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self._wandb.log(numbers, step=step)

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


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
