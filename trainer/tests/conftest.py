"""Shared fixtures: a tiny random Llama (same architecture and tokenizer as
SmolLM2) and small task files, so training tests run in seconds on a CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from grpo_trainer import contracts
from grpo_trainer.training.events import events_path

TRAINER_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = TRAINER_ROOT.parent
EXAMPLE = TRAINER_ROOT / "grpo_trainer" / "workplace" / "data" / "nemo_gym" / "example.jsonl"
# The pipeline's default config: the trainer reads its `trainer:` section.
CPU_CONFIG = REPO_ROOT / "configs" / "builtin-cpu.yaml"
GPU_CONFIG = REPO_ROOT / "configs" / "builtin-gpu.yaml"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from grpo_trainer.model.prepare import prepare_model

    out = tmp_path_factory.mktemp("models") / "tiny"
    prepare_model(out, "tiny-random")
    return out


@pytest.fixture(scope="session")
def task_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Training tasks (the NeMo Gym examples, 4 ids each) and the examples as validation tasks."""
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    root = tmp_path_factory.mktemp("data")
    train, val = root / "train.jsonl", root / "validation.jsonl"
    with open(train, "w") as fh:
        for copy in range(4):
            for row in rows:
                fh.write(json.dumps({**row, "id": row["id"] * 10 + copy}) + "\n")
    val.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return train, val


def tiny_overrides(model: Path, train: Path, val: Path, run_dir: Path, steps: int = 4) -> list[str]:
    return [
        f"policy.model_name={model}", f"data.train.data_path={train}", f"data.validation.data_path={val}",
        f"checkpointing.checkpoint_dir={run_dir / 'checkpoints'}", f"logger.log_dir={run_dir / 'logs'}",
        f"grpo.max_num_steps={steps}", "grpo.val_period=2", "checkpointing.save_period=2", "data.categories=null",
        "grpo.val_at_start=true",
        # Fixed here, not taken from the shipped CPU config (which is sized for speed).
        "grpo.num_prompts_per_step=2", "grpo.num_generations_per_prompt=4",
        "data.max_train_tasks=null", "grpo.max_num_epochs=1",
        "grpo.max_val_samples=1", "policy.generation.max_new_tokens=16",
        # The random model's signal: rollouts longer than 8 of 16 tokens lose reward.
        "grpo.reward_shaping.overlong_buffer_length=8", "grpo.reward_shaping.max_response_length=16",
        "policy.optimizer.lr=1e-3",
        "logger.tensorboard_enabled=false",
    ]


def contract_validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for one of the JSON schemas in contracts/ (the files the pipeline reads too)."""
    schema = contracts.load(name)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def read_failure(log_dir: Path) -> dict:
    """<log_dir>/failure.json, after checking it against contracts/failure.schema.json."""
    report = json.loads((Path(log_dir) / "failure.json").read_text())
    contract_validator("failure.schema.json").validate(report)
    return report


def trainer_events(log_dir: Path) -> list[dict]:
    """Every line of <log_dir>/trainer_events.jsonl (the schema's x-file), each checked against the schema."""
    validator = contract_validator("trainer-events.schema.json")
    lines = events_path(log_dir).read_text().splitlines()
    events = [json.loads(line) for line in lines]
    for event in events:
        validator.validate(event)
    return events


def trainer_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "grpo_trainer", *args]


def trainer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(TRAINER_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("RAY_ADDRESS", None)
    return env


def run_trainer(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(trainer_command(*args), env=trainer_env(), capture_output=True, text=True,
                          timeout=timeout, cwd=TRAINER_ROOT)


def metrics(run_dir: Path, kind: str = "train") -> dict[int, dict]:
    """Last record per step (a killed attempt may have logged a step twice)."""
    out: dict[int, dict] = {}
    for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == kind:
            out[record["step"]] = record
    return out
