"""When the trainer validates and when it saves, from the config alone.

The training loop (grpo.py) asks these functions at every step, and the config
check asks them for the whole run to warn about checkpoints that will not
carry the retention metric, so the warning can never describe another rule
than the one training follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.schema import CheckpointingConfig, GrpoConfig
from .checkpoints import VAL_METRICS


def validates_at(g: GrpoConfig, step: int, last_step: int) -> bool:
    """Whether validation runs after `step` (step 0: before the first update)."""
    if step == 0:
        return g.val_at_start
    periodic = g.val_period > 0 and step % g.val_period == 0
    return periodic or (step >= last_step and g.val_at_end)


def saves_at(c: CheckpointingConfig, g: GrpoConfig, step: int, last_step: int) -> bool:
    """Whether a checkpoint is written after `step`: every save_period steps, at the
    last step, and where a pipeline segment stops (grpo.stop_after_step)."""
    if not c.enabled or step < 1:
        return False
    stop_here = g.stop_after_step is not None and step >= g.stop_after_step
    return step % c.save_period == 0 or step >= last_step or stop_here


@dataclass(frozen=True)
class PlannedCheckpoint:
    step: int
    carries_metric: bool


def checkpoint_plan(c: CheckpointingConfig, g: GrpoConfig, last_step: int) -> list[PlannedCheckpoint]:
    """Every checkpoint a run to `last_step` writes, and whether its training_info.json
    will hold `checkpointing.metric_name` (only validation values are written there)."""
    written = c.metric_name in VAL_METRICS
    stops = {g.stop_after_step} if g.stop_after_step is not None and g.stop_after_step <= last_step else set()
    candidates = sorted({*range(c.save_period, last_step + 1, c.save_period), last_step, *stops})
    return [PlannedCheckpoint(s, written and validates_at(g, s, last_step))
            for s in candidates if saves_at(c, g, s, last_step)]


def _steps(steps: list[int], limit: int = 8) -> str:
    """'step 6' or 'steps 6, 12' (long lists cut, so a warning stays one readable line)."""
    shown = ", ".join(str(s) for s in steps[:limit])
    more = f" and {len(steps) - limit} more" if len(steps) > limit else ""
    return f"step{'s' if len(steps) > 1 else ''} {shown}{more}"


def metric_warnings(c: CheckpointingConfig, g: GrpoConfig) -> list[str]:
    """One-line warnings when checkpoints of a run to grpo.max_num_steps will lack the
    retention metric: retention ranks such a checkpoint below all that have it, and
    with none carrying it top-k degrades to the k newest (checkpoints.select_retained)."""
    if not c.enabled:
        return []
    plan = checkpoint_plan(c, g, g.max_num_steps)
    missing = [p.step for p in plan if not p.carries_metric]
    if not missing:
        return []
    carrying = [p.step for p in plan if p.carries_metric]
    if c.metric_name not in VAL_METRICS:
        known = " or ".join(sorted(VAL_METRICS))
        return [f"checkpointing.metric_name={c.metric_name} is never written into a checkpoint's "
                f"training_info.json (the trainer writes {known} at validation steps), so none of the "
                f"checkpoints ({_steps(missing)}) will carry it: top-k retention degrades to keeping the "
                f"{c.keep_top_k} newest, and the best checkpoint is the newest. "
                f"Fix: set checkpointing.metric_name={known}."]
    where = (f"checkpointing.save_period={c.save_period}, grpo.val_period={g.val_period}, "
             f"grpo.val_at_end={str(g.val_at_end).lower()}, grpo.max_num_steps={g.max_num_steps}"
             + (f", grpo.stop_after_step={g.stop_after_step}" if g.stop_after_step is not None else ""))
    if carrying:
        what = (f"the checkpoint{'s' if len(missing) > 1 else ''} at {_steps(missing)} will not carry "
                f"{c.metric_name}, only {'those' if len(carrying) > 1 else 'the one'} at {_steps(carrying)} "
                f"({where}): top-k retention ranks checkpoints without it below all that have it and "
                "removes them first (the newest is always kept).")
    else:
        what = (f"none of the checkpoints ({_steps(missing)}) will carry {c.metric_name} ({where}): top-k "
                f"retention degrades to keeping the {c.keep_top_k} newest, and the best checkpoint is the newest.")
    return [f"{what} Fix: {_fix(c, g, missing)}."]


def _fix(c: CheckpointingConfig, g: GrpoConfig, missing: list[int]) -> str:
    fixes = []
    val_period = g.val_period
    if val_period == 0:
        fixes.append(f"set grpo.val_period={c.save_period} (= checkpointing.save_period)")
        val_period = c.save_period
    elif any(s % c.save_period == 0 and s % val_period for s in missing):
        multiple = -(-c.save_period // val_period) * val_period
        fixes.append(f"set checkpointing.save_period to a multiple of grpo.val_period (e.g. {multiple}) "
                     f"or grpo.val_period={c.save_period}")
    if g.max_num_steps in missing and g.max_num_steps % val_period:
        fixes.append("set grpo.val_at_end=true")
    if g.stop_after_step is not None and g.stop_after_step in missing and g.stop_after_step != g.max_num_steps:
        fixes.append("stop segments (grpo.stop_after_step) at validation steps")
    return " and ".join(fixes) or "validate at every step that saves a checkpoint"
