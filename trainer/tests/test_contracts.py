"""The facts shared with the pipeline are read from contracts/, never kept as a second copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from grpo_trainer import contracts
from grpo_trainer.training import local_ray

from .conftest import REPO_ROOT, TRAINER_ROOT, contract_validator, read_failure, trainer_events

FAKE_TRAINER = REPO_ROOT / "test" / "doubles" / "fake-trainer-TEST-DOUBLE"


def test_contracts_are_read_from_the_repository_root():
    assert contracts.CONTRACTS_DIR == REPO_ROOT / "contracts"
    for name in ("ray-head.json", "failure-texts.json", "trainer-events.schema.json", "failure.schema.json"):
        assert contracts.load(name) == json.loads((REPO_ROOT / "contracts" / name).read_text())


def test_ray_head_settings_come_from_the_contract():
    assert local_ray.HEAD_SETTINGS == contracts.load("ray-head.json")
    env = local_ray.auth_env(REPO_ROOT / "token")
    assert env["RAY_AUTH_MODE"] == "token"
    assert env[local_ray.HEAD_SETTINGS["token_path_env"]] == str(REPO_ROOT / "token")
    # No trainer-side copy left behind, and no code that still looks for one.
    assert not list(TRAINER_ROOT.rglob("ray_head.json"))
    code = [*(TRAINER_ROOT / "grpo_trainer").rglob("*.py"), *(TRAINER_ROOT / "bench").rglob("*.py")]
    assert not [p for p in code if "ray_head.json" in p.read_text()]


def test_contract_schemas_are_valid_json_schemas():
    for name in ("trainer-events.schema.json", "failure.schema.json"):
        contract_validator(name)  # raises on a broken schema


def _fake_trainer(config, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(FAKE_TRAINER), "FAKE_STEP_SECONDS": "0", **env}
    return subprocess.run([sys.executable, "-m", "grpo_trainer", "train", "--config", str(config), *args],
                          env=environ, capture_output=True, text=True, timeout=60)


def test_test_double_of_the_trainer_writes_the_same_events(tmp_path):
    """The pipeline's workflow tests run test/doubles/fake-trainer-TEST-DOUBLE: its events and
    failure reports must pass the same contracts, and it retains checkpoints as the trainer does."""
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({"backend": "builtin", "trainer": {
        "grpo": {"max_num_steps": 4, "val_period": 2},
        "checkpointing": {"save_period": 2, "keep_top_k": 1, "metric_name": "val:accuracy",
                          "higher_is_better": True, "checkpoint_dir": str(tmp_path / "ckpt")},
        "logger": {"log_dir": str(tmp_path / "logs")}}}))
    crashed = _fake_trainer(config, FAKE_CRASH_AT_STEP="3")
    assert crashed.returncode == 1 and "simulated crash" in crashed.stdout
    resumed = _fake_trainer(config)
    assert resumed.returncode == 0, resumed.stderr
    events = trainer_events(tmp_path / "logs")
    assert [(e["event"], e["step"], e.get("removed")) for e in events] == [
        ("running", 0, None), ("checkpoint_saved", 2, []), ("running", 2, None), ("checkpoint_saved", 4, [2])]
    assert events[-1]["path"] == str((tmp_path / "ckpt" / "step_4").resolve())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step_4"]
    failed = _fake_trainer(config, FAKE_FAIL_TYPE="OutOfMemory")
    assert failed.returncode == 1 and read_failure(tmp_path / "logs")["type"] == "OutOfMemory"
