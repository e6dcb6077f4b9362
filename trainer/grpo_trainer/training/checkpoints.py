"""NeMo RL's checkpoint layout, atomic saves, retention and resume lookup.

Layout of `checkpoint_dir/step_N/`:
    training_info.json        total_steps, current_step, current_epoch, consumed_samples, [val:accuracy]
    config.yaml               the full resolved trainer config
    run_identity.json         model and data fingerprints (guards resume)
    trainer_state.json        TRL/transformers TrainerState (step, log history)
    policy/weights/           model.safetensors + config.json
    policy/tokenizer/         tokenizer files with our chat template
    policy/optimizer/         optimizer.pt, scheduler.pt, rng_state.pth

A save is written to `tmp_step_N/` and renamed to `step_N/` once complete, so
a crash mid-save leaves only a `tmp_` directory, which lookup ignores.

This module is the trainer's only reader of that layout: every other part
(training, resume, export, serve, benchmarks) lists and reads checkpoints
through `list_complete` / `read_checkpoint` / `policy_dirs`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEP_DIR = re.compile(r"^step_(\d+)$")
TRAINING_INFO = "training_info.json"
IDENTITY = "run_identity.json"
WEIGHTS = Path("policy/weights")
TOKENIZER = Path("policy/tokenizer")
OPTIMIZER = Path("policy/optimizer")
# training_info.json key -> the validation record value it copies. Only these
# metrics reach a checkpoint, so only they can rank checkpoints for retention.
VAL_METRICS = {"val:accuracy": "validation/accuracy"}


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    info: dict[str, Any]

    def metric(self, name: str) -> float | None:
        value = self.info.get(name)
        return float(value) if isinstance(value, (int, float)) else None


def read_training_info(step_dir: str | Path) -> dict[str, Any] | None:
    """A checkpoint directory's training_info.json, or None when it is missing or torn
    (also for a directory under another name, e.g. a copied or exported checkpoint)."""
    info_file = Path(step_dir) / TRAINING_INFO
    if not info_file.is_file():
        return None
    try:
        info = json.loads(info_file.read_text())
    except json.JSONDecodeError:
        return None  # torn file: the save did not complete
    return info if isinstance(info, dict) else None


def read_checkpoint(step_dir: str | Path) -> Checkpoint | None:
    """`step_N` as a complete checkpoint, or None: another name (`tmp_step_N`, a
    model dir) or no readable training_info.json."""
    path = Path(step_dir)
    match = STEP_DIR.match(path.name)
    if not match or not path.is_dir():
        return None
    info = read_training_info(path)
    return None if info is None else Checkpoint(int(match.group(1)), path, info)


def list_complete(checkpoint_dir: str | Path) -> list[Checkpoint]:
    """Complete checkpoints, oldest first. `tmp_step_N` is never included."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = [c for c in (read_checkpoint(child) for child in root.iterdir()) if c is not None]
    return sorted(found, key=lambda c: c.step)


def latest_complete(checkpoint_dir: str | Path) -> Checkpoint | None:
    complete = list_complete(checkpoint_dir)
    return complete[-1] if complete else None


def policy_dirs(model_dir: str | Path) -> tuple[Path, Path]:
    """(weights dir, tokenizer dir) of a `step_N` checkpoint or of a plain Hugging Face
    model directory (which holds both itself)."""
    root = Path(model_dir)
    weights = root / WEIGHTS if (root / WEIGHTS).is_dir() else root
    tokenizer = root / TOKENIZER if (root / TOKENIZER).is_dir() else root
    return weights, tokenizer


def tmp_save_dir(checkpoint_dir: str | Path, step: int) -> Path:
    """Where the save of `step` is assembled (other ranks add their files there)."""
    return Path(checkpoint_dir) / f"tmp_step_{step}"


def begin_save(checkpoint_dir: str | Path, step: int) -> Path:
    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = tmp_save_dir(root, step)
    if tmp.exists():  # left by a crash during an earlier attempt at this step
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def finish_save(tmp: Path) -> Path:
    """Make `tmp_step_N` durable, then rename it to `step_N` (swapping out an old one)."""
    final = tmp.with_name(tmp.name.removeprefix("tmp_"))
    _fsync_tree(tmp)
    if final.exists():
        old = final.with_name("old_" + final.name)
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def select_retained(checkpoints: list[Checkpoint], metric_name: str, higher_is_better: bool,
                    keep_top_k: int) -> set[int]:
    """Steps to keep: the top `keep_top_k` by metric plus the newest.

    A checkpoint without the metric ranks last (it was saved without a
    validation); ties go to the newer step, as in NeMo RL.
    """
    if not checkpoints:
        return set()
    worst = -math.inf if higher_is_better else math.inf

    def key(c: Checkpoint) -> tuple[float, int]:
        value = c.metric(metric_name)
        score = worst if value is None else value
        return (score if higher_is_better else -score, c.step)

    ranked = sorted(checkpoints, key=key, reverse=True)
    keep = {c.step for c in ranked[:keep_top_k]}
    keep.add(checkpoints[-1].step)
    return keep


def apply_retention(checkpoint_dir: str | Path, metric_name: str, higher_is_better: bool,
                    keep_top_k: int) -> list[int]:
    """Delete complete checkpoints outside the retained set; returns deleted steps.

    Called only right after a save completed, so the newest complete
    checkpoint (always kept) is the one just written.
    """
    complete = list_complete(checkpoint_dir)
    keep = select_retained(complete, metric_name, higher_is_better, keep_top_k)
    deleted = []
    for ckpt in complete:
        if ckpt.step not in keep:
            shutil.rmtree(ckpt.path)
            deleted.append(ckpt.step)
    return deleted


def best_checkpoint(checkpoint_dir: str | Path, metric_name: str, higher_is_better: bool) -> Checkpoint | None:
    complete = list_complete(checkpoint_dir)
    scored = [c for c in complete if c.metric(metric_name) is not None]
    if not scored:
        return complete[-1] if complete else None
    pick = max if higher_is_better else min
    return pick(scored, key=lambda c: (c.metric(metric_name), c.step) if higher_is_better
                else (c.metric(metric_name), -c.step))


def hf_resume_view(step_dir: Path, view_dir: Path) -> Path:
    """A directory in the layout transformers' Trainer resumes from, made of
    symlinks into our NeMo RL layout (nothing is copied)."""
    shutil.rmtree(view_dir, ignore_errors=True)
    view_dir.mkdir(parents=True)
    sources = [step_dir / "trainer_state.json"]
    for folder in (WEIGHTS, OPTIMIZER):
        if (step_dir / folder).is_dir():
            sources.extend((step_dir / folder).iterdir())
    for src in sources:
        (view_dir / src.name).symlink_to(src.resolve())
    return view_dir
