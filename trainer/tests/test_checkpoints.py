"""Atomic saves, retention (top-k by metric plus newest) and resume lookup."""

from __future__ import annotations

import json
from pathlib import Path

from grpo_trainer.training import checkpoints as ckpt


def _make(root: Path, step: int, metric: float | None, complete: bool = True) -> Path:
    tmp = ckpt.begin_save(root, step)
    info = {"total_steps": step}
    if metric is not None:
        info["val:accuracy"] = metric
    (tmp / "training_info.json").write_text(json.dumps(info))
    return ckpt.finish_save(tmp) if complete else tmp


def test_save_is_atomic_and_tmp_dirs_are_ignored(tmp_path):
    _make(tmp_path, 6, 0.1)
    partial = _make(tmp_path, 12, 0.9, complete=False)
    assert partial.name == "tmp_step_12" and partial.exists()
    assert [c.step for c in ckpt.list_complete(tmp_path)] == [6]
    assert ckpt.latest_complete(tmp_path).step == 6
    # A later attempt at the same step replaces the stale tmp dir.
    fresh = ckpt.begin_save(tmp_path, 12)
    assert not any(fresh.iterdir())


def test_torn_training_info_is_not_a_checkpoint(tmp_path):
    path = _make(tmp_path, 6, 0.1)
    (path / "training_info.json").write_text("{not json")
    assert ckpt.list_complete(tmp_path) == []


def test_retention_keeps_top_k_plus_newest(tmp_path):
    for step, acc in [(6, 0.5), (12, 0.1), (18, 0.7), (24, 0.3), (30, 0.2)]:
        _make(tmp_path, step, acc)
        ckpt.apply_retention(tmp_path, "val:accuracy", True, 3)
    assert [c.step for c in ckpt.list_complete(tmp_path)] == [6, 18, 24, 30]
    assert ckpt.best_checkpoint(tmp_path, "val:accuracy", True).step == 18


def test_retention_never_touches_tmp_and_treats_missing_metric_as_worst(tmp_path):
    _make(tmp_path, 6, None)
    _make(tmp_path, 12, 0.4)
    _make(tmp_path, 18, 0.5)
    tmp = _make(tmp_path, 24, 0.9, complete=False)
    _make(tmp_path, 30, 0.45)
    deleted = ckpt.apply_retention(tmp_path, "val:accuracy", True, 2)
    assert deleted == [6, 12]
    assert tmp.exists()


def test_lower_is_better_metrics(tmp_path):
    for step, loss in [(1, 0.9), (2, 0.1), (3, 0.5)]:
        _make(tmp_path, step, loss)
    assert ckpt.select_retained(ckpt.list_complete(tmp_path), "val:accuracy", False, 1) == {2, 3}


def test_resume_view_links_into_our_layout(tmp_path):
    step = tmp_path / "step_2"
    (step / "policy" / "weights").mkdir(parents=True)
    (step / "policy" / "optimizer").mkdir(parents=True)
    (step / "policy" / "weights" / "model.safetensors").write_text("w")
    (step / "policy" / "optimizer" / "optimizer.pt").write_text("o")
    (step / "trainer_state.json").write_text("{}")
    view = ckpt.hf_resume_view(step, tmp_path / "view")
    assert sorted(p.name for p in view.iterdir()) == ["model.safetensors", "optimizer.pt", "trainer_state.json"]
    assert (view / "optimizer.pt").read_text() == "o"
