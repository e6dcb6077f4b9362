"""Config loading: every mistake fails before any work and names the key or file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grpo_trainer.config.loader import load_config, parse_overrides
from grpo_trainer.errors import InvalidConfigError
from grpo_trainer.training.grpo import batch_split
from grpo_trainer.training.schedule import checkpoint_plan

from .conftest import CPU_CONFIG, GPU_CONFIG, REPO_ROOT, read_failure, run_trainer


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
    ("policy.train_micro_batch_size=0", "policy.train_micro_batch_size"),
    ("policy.packed_varlen_attention=true", "policy.packed_varlen_attention"),  # without packed_sequences
    ("env.workplace_assistant.tools=some", "env.workplace_assistant.tools"),
    ("data.categories=email", "data.categories"),
    ("data.max_train_tasks=0", "data.max_train_tasks"),
    ("data.pool_selection=hardest", "data.pool_selection"),
    ("data.pool_probe_tasks=0", "data.pool_probe_tasks"),
    ("policy.generation.top_k=0", "policy.generation.top_k"),
    ("policy.generation.top_p=0", "policy.generation.top_p"),
    ("policy.generation.top_p=1.5", "policy.generation.top_p"),
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
    failure = read_failure(log_dir)
    assert failure["type"] == "InvalidConfig" and "policy.model_name" in failure["message"]
    assert not (tmp_path / "ckpt").exists()


def test_pipeline_config_is_read_through_its_trainer_section(tmp_path):
    # The shipped CPU config exists once: the pipeline's file, whose trainer: section the trainer reads.
    section = yaml.safe_load(CPU_CONFIG.read_text())["trainer"]
    alone = tmp_path / "trainer-section.yaml"
    alone.write_text(yaml.safe_dump(section))
    overrides = ["grpo.max_num_steps=7", "policy.model_name=m"]
    from_pipeline, warnings = load_config(CPU_CONFIG, overrides, check_paths=False)
    from_section, section_warnings = load_config(alone, overrides, check_paths=False)
    assert from_pipeline == from_section and warnings == section_warnings
    assert from_pipeline.grpo.max_num_steps == 7 and from_pipeline.grpo.num_prompts_per_step == 1
    assert not (REPO_ROOT / "trainer" / "configs").exists()


def test_shipped_gpu_config_is_valid():
    cfg, warnings = load_config(GPU_CONFIG, [], check_paths=False)
    assert warnings == []
    assert (cfg.grpo.num_prompts_per_step, cfg.grpo.num_generations_per_prompt) == (8, 8)
    assert cfg.policy.train_micro_batch_size == 16 and cfg.policy.trainable_layers is None
    assert cfg.policy.packed_sequences and cfg.policy.packed_varlen_attention
    assert not cfg.policy.compiled_training_forward
    assert cfg.cluster.gpus_per_node == 1 and cfg.checkpointing.save_period == cfg.grpo.val_period == 10


def test_pipeline_config_of_another_backend_is_refused(tmp_path):
    other = tmp_path / "nemo.yaml"
    other.write_text(yaml.safe_dump({"backend": "nemo_rl", "trainer": {"grpo": {"max_num_steps": 3}}}))
    with pytest.raises(InvalidConfigError) as err:
        load_config(other, [], check_paths=False)
    assert err.value.key == "backend" and "nemo_rl" in str(err.value)
    shipped = REPO_ROOT / "configs" / "nemo-rl-nemotron-nano-9b.yaml"
    with pytest.raises(InvalidConfigError) as err:
        load_config(shipped, [], check_paths=False)
    assert err.value.key == "backend"


def test_micro_batch_need_not_divide_the_step():
    # 9 prompts x 2 generations = 18 rollouts per step: 9 divides it, 4 does not (training uses 3).
    # (without the CPU config's pool of 4 tasks, which a 9-task step cannot draw from)
    shape = ["data.max_train_tasks=null", "grpo.num_prompts_per_step=9", "grpo.num_generations_per_prompt=2"]
    for micro in (9, 4):
        result = run_trainer("check-config", "--skip-paths", "--config", str(CPU_CONFIG), *shape,
                             f"policy.train_micro_batch_size={micro}")
        assert result.returncode == 0, result.stderr
        assert "config OK" in result.stdout
    assert batch_split(18, 4, 1) == (3, 6)
    assert batch_split(18, 9, 1) == (9, 2)
    assert batch_split(18, 4, 2) == (3, 3)
    # Workers still have to share a step evenly.
    result = run_trainer("check-config", "--skip-paths", "--config", str(CPU_CONFIG), *shape, "cluster.num_workers=4")
    assert result.returncode == 2 and "cluster.num_workers" in result.stderr


def test_checkpoint_plan_follows_save_and_validation_rules():
    cfg, _ = load_config(CPU_CONFIG, ["checkpointing.save_period=6", "grpo.val_period=4"], check_paths=False)
    plan = checkpoint_plan(cfg.checkpointing, cfg.grpo, 12)
    assert [(p.step, p.carries_metric) for p in plan] == [(6, False), (12, True)]
    cfg, _ = load_config(CPU_CONFIG, ["grpo.val_at_end=false", "grpo.max_num_steps=10", "grpo.stop_after_step=3"],
                         check_paths=False)
    plan = checkpoint_plan(cfg.checkpointing, cfg.grpo, 10)
    assert [(p.step, p.carries_metric) for p in plan] == [(3, False), (6, True), (10, False)]


def _check_config_warnings(*overrides: str) -> list[str]:
    result = run_trainer("check-config", "--skip-paths", "--config", str(CPU_CONFIG), *overrides)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == len([line for line in lines if line.strip()]), result.stderr  # nothing else, one per line
    return warnings


def test_checkpoints_without_the_retention_metric_warn_naming_their_steps():
    (warning,) = _check_config_warnings("checkpointing.save_period=6", "grpo.val_period=4",
                                        "grpo.max_num_steps=12")
    assert "checkpoint at step 6 will not carry val:accuracy, only the one at step 12" in warning
    assert "multiple of grpo.val_period" in warning
    assert _check_config_warnings("checkpointing.save_period=6", "grpo.val_period=6", "grpo.max_num_steps=12") == []


def test_no_checkpoint_with_the_retention_metric_says_retention_keeps_the_newest():
    (warning,) = _check_config_warnings("grpo.val_period=5", "grpo.val_at_end=false", "grpo.max_num_steps=12")
    assert warning.startswith("warning: none of the checkpoints (steps 6, 12) will carry val:accuracy")
    assert "keeping the 3 newest" in warning
    (warning,) = _check_config_warnings("checkpointing.metric_name=train:reward")
    assert "none of the checkpoints" in warning and "checkpointing.metric_name=val:accuracy" in warning
    assert _check_config_warnings("checkpointing.enabled=false", "grpo.val_period=5") == []
