"""Where metrics and logs go: TensorBoard on by default (the shipped CPU config),
W&B only when asked for and possible, and Ray's own output in ray.log instead
of trainer.log (errors in both)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types

import pytest

from grpo_trainer.config.loader import load_config
from grpo_trainer.tools.tb_scalars import scalars
from grpo_trainer.training.metrics import MetricsLogger, report_to, wandb_settings

from .conftest import CPU_CONFIG, run_trainer, tiny_overrides


def test_tiny_run_with_the_shipped_config_writes_tensorboard_and_warns_about_wandb_without_a_key(
        tiny_model, task_files, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    overrides = [o for o in tiny_overrides(tiny_model, *task_files, tmp_path, steps=2)
                 if not o.startswith("logger.tensorboard_enabled")]  # the shipped config's setting
    result = run_trainer("train", "--config", str(CPU_CONFIG), *overrides, "logger.wandb_enabled=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning: logger.wandb_enabled is true but WANDB_API_KEY is not in the trainer's" in result.stdout
    assert f"metrics: {tmp_path / 'logs' / 'metrics.jsonl'} + tensorboard\n" in result.stdout
    events = list((tmp_path / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event files under logger.log_dir/tensorboard"
    tb = scalars(tmp_path / "logs")
    assert {step for kind, step in tb if kind == "train"} == {1, 2}
    assert "train/reward" in tb[("train", 2)] and "validation/accuracy" in tb[("validation", 2)]


def _cfg(*overrides: str):
    return load_config(CPU_CONFIG, list(overrides), check_paths=False)[0]


def test_report_to_follows_the_logger_section_and_the_environment(monkeypatch):
    assert report_to(_cfg()) == (["tensorboard"], [])
    assert report_to(_cfg("logger.tensorboard_enabled=false")) == ([], [])
    wandb = _cfg("logger.wandb_enabled=true")
    sinks, warnings = report_to(wandb, {})
    assert sinks == ["tensorboard"] and "WANDB_API_KEY is not in the trainer's environment" in warnings[0]
    real_find_spec = importlib.util.find_spec

    def wandb_spec(spec: object):
        return lambda name, *a: spec if name == "wandb" else real_find_spec(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", wandb_spec(None))
    sinks, warnings = report_to(wandb, {"WANDB_API_KEY": "k" * 40})
    assert sinks == ["tensorboard"] and "wandb package is not installed" in warnings[0]
    assert any("wandb package is not installed" in w for w in load_config(
        CPU_CONFIG, ["logger.wandb_enabled=true"], check_paths=False)[1])
    monkeypatch.setattr(importlib.util, "find_spec", wandb_spec(object()))
    assert report_to(wandb, {"WANDB_API_KEY": "k" * 40}) == (["tensorboard", "wandb"], [])
    assert report_to(wandb, {"WANDB_MODE": "offline"}) == (["tensorboard", "wandb"], [])


def test_wandb_gets_the_same_numbers_and_steps_as_metrics_jsonl(tmp_path, monkeypatch):
    calls: list[tuple[str, object, object]] = []

    class Run:
        def log(self, data, step):
            calls.append(("log", data, step))

        def finish(self):
            calls.append(("finish", None, None))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: calls.append(("init", kw, None)) or Run()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = _cfg(f"logger.log_dir={tmp_path}", f"checkpointing.checkpoint_dir={tmp_path / 'ckpt'}",
               "logger.wandb.project=proj", "logger.wandb.name=run-a")
    settings = wandb_settings(cfg)
    assert settings["project"] == "proj" and settings["name"] == "run-a" and settings["resume"] == "allow"
    assert settings["id"] == wandb_settings(cfg)["id"]  # every segment of a run resumes one W&B run
    logger = MetricsLogger(tmp_path, tensorboard=False, wandb=settings)
    logger.log("train", 3, {"train/reward": 0.5, "train/task_ids": ["a"], "flag": True})
    logger.close()
    assert [c[0] for c in calls] == ["init", "log", "finish"]
    assert calls[1][1:] == ({"train/reward": 0.5}, 3)
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["train/reward"] == 0.5


@pytest.fixture
def dispatcher():
    """Ray's real forwarding dispatcher with a stand-in for the handler ray.init installs."""
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as d

    printed: list[dict] = []
    d.add_handler("ray_print_logs", printed.append)
    try:
        yield d, printed
    finally:
        d.remove_handler("ray_print_logs")


def test_ray_lines_go_to_ray_log_and_errors_stay_in_trainer_log(dispatcher, tmp_path):
    from grpo_trainer.training.ray_logs import route_ray_logs

    d, printed = dispatcher
    close = route_ray_logs(tmp_path)
    assert close is not None
    ours = {"pid": 11, "actor_name": "RayTrainWorker", "lines": ["step 1/2 | reward 0.5"], "is_err": False}
    noise = {"pid": 12, "actor_name": "PlacementGroupCleaner", "is_err": True,
             "lines": ["Failed to query Ray Train Controller actor state. Continuing to monitor."]}
    gcs = {"pid": "gcs_server", "is_err": True, "lines": ["gcs_server.cc:1361: Failed to establish connection to "
                                                         "the event+metrics exporter agent."]}
    oom = {"pid": 13, "actor_name": "TrainController", "is_err": True,
           "lines": ["Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory"]}
    raylet = {"pid": "raylet", "is_err": True, "lines": ["A worker died or was killed while executing a task"]}
    chatter = {"pid": "raylet", "is_err": True, "lines": ["main.cc:1108: Failed to establish connection to the "
                                                         "metrics exporter agent. RpcError: Running out of retries"]}
    for data in (ours, noise, gcs, oom, raylet, chatter):
        d.emit(data)
    close()
    assert printed == [ours, oom, raylet]  # what reaches trainer.log
    ray_log = (tmp_path / "ray.log").read_text()
    assert "step 1/2" not in ray_log
    for line in ("(PlacementGroupCleaner pid=12) Failed to query", "(pid=gcs_server) gcs_server.cc",
                 "(TrainController pid=13) torch.OutOfMemoryError", "(pid=raylet) A worker died"):
        assert line in ray_log
