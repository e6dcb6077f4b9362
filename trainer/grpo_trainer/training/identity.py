"""What makes two runs "the same run" for resume: model and data fingerprints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..config.schema import TrainerConfig
from ..errors import ResumeMismatchError
from ..model.prepare import MANIFEST


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def model_fingerprint(model_dir: str | Path) -> str:
    model_dir = Path(model_dir)
    manifest = model_dir / MANIFEST
    if manifest.is_file():
        return str(json.loads(manifest.read_text())["fingerprint"])
    # A plain HF directory: its config and weight file sizes identify it
    # cheaply enough without hashing gigabytes on every start.
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def run_identity(cfg: TrainerConfig) -> dict[str, Any]:
    return {
        "model": model_fingerprint(cfg.policy.model_name),
        "train_data": _file_digest(Path(cfg.data.train.data_path)),
        "categories": sorted(cfg.data.categories) if cfg.data.categories else None,
        "max_train_tasks": cfg.data.max_train_tasks,
        # Absent for the default, so checkpoints written before the key existed still resume.
        **({"pool_selection": cfg.data.pool_selection} if cfg.data.pool_selection != "random" else {}),
        "num_prompts_per_step": cfg.grpo.num_prompts_per_step,
        "num_generations_per_prompt": cfg.grpo.num_generations_per_prompt,
        "seed": cfg.grpo.seed,
    }


def check_resume(saved: dict[str, Any], current: dict[str, Any], checkpoint: Path) -> None:
    labels = {"model": ("policy.model_name", "model"), "train_data": ("data.train.data_path", "training data set"),
              "categories": ("data.categories", "category filter"),
              "max_train_tasks": ("data.max_train_tasks", "training task pool"),
              "pool_selection": ("data.pool_selection", "way of choosing the training task pool"),
              "num_prompts_per_step": ("grpo.num_prompts_per_step", "batch shape"),
              "num_generations_per_prompt": ("grpo.num_generations_per_prompt", "batch shape"),
              "seed": ("grpo.seed", "data order seed")}
    for key, (config_key, what) in labels.items():
        if saved.get(key) != current.get(key):
            raise ResumeMismatchError(
                config_key,
                f"refusing to resume {checkpoint}: it was made with a different {what} "
                f"({saved.get(key)!r} there, {current.get(key)!r} now). Point checkpointing.checkpoint_dir "
                "at an empty directory to start a new run.")
