"""Config loading: every mistake fails before any work and names the key or file."""

from __future__ import annotations

from pathlib import Path

import pytest

from grpo_trainer.config.loader import load_config, parse_overrides
from grpo_trainer.errors import InvalidConfigError

from .conftest import CPU_CONFIG, run_trainer


def _valid(tiny_model: Path, task_files: tuple[Path, Path]) -> list[str]:
    train, val = task_files
    return [f"policy.model_name={tiny_model}", f"data.train.data_path={train}", f"data.validation.data_path={val}"]


def test_shipped_cpu_config_is_valid(tiny_model, task_files):
    cfg, warnings = load_config(CPU_CONFIG, _valid(tiny_model, task_files))
    assert cfg.checkpointing.save_period == 6 and cfg.grpo.val_period == 6
    assert cfg.checkpointing.keep_top_k == 3 and cfg.checkpointing.metric_name == "val:accuracy"
    assert warnings == []


@pytest.mark.parametrize("override, key", [
    ("grpo.bogus=1", "grpo.bogus"),
    ("nonsense.key=1", "nonsense.key"),
    ("grpo.max_num_steps=twelve", "grpo.max_num_steps"),
    ("grpo.val_at_start=3", "grpo.val_at_start"),
    ("checkpointing.keep_top_k=0", "checkpointing.keep_top_k"),
    ("checkpointing.save_period=0", "checkpointing.save_period"),
    ("checkpointing.save_period=-6", "checkpointing.save_period"),
    ("checkpointing.metric_name=accuracy", "checkpointing.metric_name"),
    ("grpo.num_generations_per_prompt=1", "grpo.num_generations_per_prompt"),
    ("policy.precision=float64", "policy.precision"),
    ("policy.train_micro_batch_size=3", "policy.train_micro_batch_size"),
    ("env.workplace_assistant.tools=some", "env.workplace_assistant.tools"),
    ("data.categories=email", "data.categories"),
])
def test_bad_values_name_the_key(tiny_model, task_files, override, key):
    with pytest.raises(InvalidConfigError) as err:
        load_config(CPU_CONFIG, _valid(tiny_model, task_files) + [override])
    assert err.value.key == key


def test_missing_files_name_the_path(tiny_model, task_files, tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(InvalidConfigError) as err:
        load_config(CPU_CONFIG, _valid(tiny_model, task_files) + [f"data.train.data_path={missing}"])
    assert err.value.key == "data.train.data_path" and str(missing) in str(err.value)
    with pytest.raises(InvalidConfigError) as err:
        load_config(CPU_CONFIG, _valid(tiny_model, task_files) + [f"policy.model_name={tmp_path}"])
    assert err.value.key == "policy.model_name"
    with pytest.raises(InvalidConfigError) as err:
        load_config(tmp_path / "absent.yaml", [])
    assert "absent.yaml" in str(err.value)


def test_broken_yaml_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grpo: [unclosed\n")
    with pytest.raises(InvalidConfigError) as err:
        load_config(bad, [], check_paths=False)
    assert str(bad) in str(err.value) and "YAML" in str(err.value)


def test_override_syntax_and_yaml_scalars():
    assert parse_overrides(["a.b=3", "++c.d=1e-5", "+e=true", "f=null", "g=[x, y]"]) == [
        ("a.b", 3), ("c.d", "1e-5"), ("e", True), ("f", None), ("g", ["x", "y"])]
    with pytest.raises(InvalidConfigError):
        parse_overrides(["no-equals-sign"])
    cfg, _ = load_config(None, ["policy.optimizer.lr=1e-5"], check_paths=False)
    assert cfg.policy.optimizer.lr == pytest.approx(1e-5)


def test_misaligned_save_and_validation_periods_warn(tiny_model, task_files):
    _, warnings = load_config(CPU_CONFIG, _valid(tiny_model, task_files) + ["grpo.val_period=10"])
    assert len(warnings) == 1 and "newest" in warnings[0]


def test_check_config_cli_exit_codes(tiny_model, task_files, tmp_path):
    ok = run_trainer("check-config", "--config", str(CPU_CONFIG), *_valid(tiny_model, task_files))
    assert ok.returncode == 0, ok.stderr
    bad = run_trainer("check-config", "--config", str(CPU_CONFIG), *_valid(tiny_model, task_files),
                      "checkpointing.keep_top_k=0")
    assert bad.returncode == 2 and "checkpointing.keep_top_k" in bad.stderr


def test_train_with_invalid_config_writes_failure_and_starts_nothing(tmp_path):
    log_dir = tmp_path / "logs"
    result = run_trainer("train", "--config", str(CPU_CONFIG), f"logger.log_dir={log_dir}",
                         f"checkpointing.checkpoint_dir={tmp_path / 'ckpt'}", "policy.model_name=/does/not/exist")
    assert result.returncode == 2
    import json

    failure = json.loads((log_dir / "failure.json").read_text())
    assert failure["type"] == "InvalidConfig" and "policy.model_name" in failure["message"]
    assert not (tmp_path / "ckpt").exists()
