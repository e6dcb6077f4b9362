"""End-to-end training with the tiny random model: layout, metrics, resume, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from grpo_trainer.config.loader import load_config
from grpo_trainer.training import checkpoints as ckpt
from grpo_trainer.training.schedule import checkpoint_plan

from .conftest import (
    CPU_CONFIG,
    TRAINER_ROOT,
    metrics,
    read_failure,
    run_trainer,
    tiny_overrides,
    trainer_command,
    trainer_env,
    trainer_events,
)


def _train(model: Path, files: tuple[Path, Path], run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_trainer("train", "--config", str(CPU_CONFIG), *tiny_overrides(model, *files, run_dir), *extra)


@pytest.fixture(scope="module")
def straight_run(tiny_model, task_files, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("straight")
    result = _train(tiny_model, task_files, run_dir, "logger.tensorboard_enabled=true")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_layout_of_checkpoints(straight_run):
    ckpts = straight_run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_2", "step_4"]
    step = ckpts / "step_4"
    for rel in ["training_info.json", "config.yaml", "trainer_state.json", "run_identity.json",
                "policy/weights/model.safetensors", "policy/weights/config.json",
                "policy/tokenizer/tokenizer.json", "policy/optimizer/optimizer.pt",
                "policy/optimizer/scheduler.pt", "policy/optimizer/rng_state.pth"]:
        assert (step / rel).is_file(), rel
    info = json.loads((step / "training_info.json").read_text())
    assert info["total_steps"] == 4 and info["consumed_samples"] == 8
    assert {"current_step", "current_epoch", "val:accuracy"} <= set(info)


def test_metrics_use_nemo_rl_names(straight_run):
    train = metrics(straight_run, "train")
    assert sorted(train) == [1, 2, 3, 4]
    for record in train.values():
        for key in ("train/reward", "train/loss", "timing/train/total_step_time", "train/generated_tokens",
                    "train/trained_tokens", "performance/tokens_per_sec", "train/task_ids"):
            assert key in record, key
        assert len(record["train/task_ids"]) == 8  # 2 prompts x 4 generations
        # one reward per rollout, in task_ids' order, the same rewards TRL's logged mean comes from
        assert len(record["train/rollout_rewards"]) == 8
        assert abs(sum(record["train/rollout_rewards"]) / 8 - record["train/reward"]) < 1e-3
        # 2 micro batches of 4 as TRL splits them (length grouping off): trained as split
        assert 0 < record["train/padded_tokens"] == record["train/padded_tokens_ungrouped"]
        assert record.get("train/packed_tokens") is None  # packing off
        # each generate call decodes until its longest row ends: at most 16 new tokens per turn here
        assert 1 <= record["train/generate_decode_steps"] <= 16 * record["train/generate_calls"]
        assert 0 < record["train/generate_slot_use"] <= 1
        # the unshaped success rate, logged beside the shaped reward (weight 0: a metric only)
        assert 0.0 <= record["train/rewards/task_solved/mean"] <= 1.0
    val = metrics(straight_run, "validation")
    assert sorted(val) == [0, 2, 4]
    assert all(0.0 <= v["validation/accuracy"] <= 1.0 for v in val.values())
    assert list((straight_run / "logs" / "tensorboard").glob("events.out.tfevents.*"))


def test_events_report_running_and_each_complete_checkpoint(straight_run, tiny_model, task_files):
    events = trainer_events(straight_run / "logs")  # every line checked against the contract's schema
    assert [(e["event"], e["step"]) for e in events] == [("running", 0), ("checkpoint_saved", 2),
                                                         ("checkpoint_saved", 4)]
    on_disk = {c.step: c for c in ckpt.list_complete(straight_run / "checkpoints")}
    saved = [e for e in events if e["event"] == "checkpoint_saved"]
    assert [e["step"] for e in saved] == sorted(on_disk)
    for event in saved:
        assert event["path"] == str(on_disk[event["step"]].path.resolve()) and event["removed"] == []
    assert events[0]["time"] <= saved[0]["time"] <= saved[1]["time"]
    # The config check's plan of checkpoints is what training did, metric included.
    cfg, _ = load_config(CPU_CONFIG, tiny_overrides(tiny_model, *task_files, straight_run), check_paths=False)
    plan = checkpoint_plan(cfg.checkpointing, cfg.grpo, cfg.grpo.max_num_steps)
    assert [(p.step, p.carries_metric) for p in plan] == [
        (c.step, "val:accuracy" in c.info) for c in on_disk.values()]


def test_events_report_what_retention_removed(tiny_model, task_files, tmp_path):
    # No validation at all, so no checkpoint carries val:accuracy: top-1 retention keeps the newest.
    # A micro batch of 3 for 8 rollouts per step: training uses 2 per device and says so.
    result = _train(tiny_model, task_files, tmp_path, "grpo.max_num_steps=3", "checkpointing.save_period=1",
                    "checkpointing.keep_top_k=1", "grpo.val_period=0", "grpo.val_at_end=false",
                    "grpo.val_at_start=false", "policy.train_micro_batch_size=3")
    assert result.returncode == 0, result.stderr[-3000:]
    events = trainer_events(tmp_path / "logs")
    assert [(e["event"], e["step"], e.get("removed")) for e in events] == [
        ("running", 0, None), ("checkpoint_saved", 1, []), ("checkpoint_saved", 2, [1]),
        ("checkpoint_saved", 3, [2])]
    assert [c.step for c in ckpt.list_complete(tmp_path / "checkpoints")] == [3]
    assert "per-device batch 2 instead of policy.train_micro_batch_size=3" in result.stdout
    assert "2 rollouts per device x 4 accumulation steps x 1 workers = 8 rollouts per step" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "none of the checkpoints (steps 1, 2, 3)" in warnings[0]


def test_policy_really_updates(straight_run, tiny_model):
    from safetensors.torch import load_file

    before = load_file(str(tiny_model / "model.safetensors"))
    after = load_file(str(straight_run / "checkpoints" / "step_4" / "policy" / "weights" / "model.safetensors"))
    assert max((before[k] - after[k]).abs().max().item() for k in before) > 0


def test_resume_after_kill_matches_straight_run(straight_run, tiny_model, task_files, tmp_path):
    run_dir = tmp_path / "killed"
    args = ["train", "--config", str(CPU_CONFIG), *tiny_overrides(tiny_model, *task_files, run_dir)]
    proc = subprocess.Popen(trainer_command(*args), env=trainer_env(), cwd=TRAINER_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "step_2" / "training_info.json").exists():
        assert proc.poll() is None, "trainer exited before the first checkpoint"
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "checkpoints" / "step_4").exists()

    resumed = _train(tiny_model, task_files, run_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stdout
    # Whole lines only, even from the killed attempt; the second start resumes at step 2.
    events = trainer_events(run_dir / "logs")
    assert [e["step"] for e in events if e["event"] == "running"] == [0, 2]
    assert [e["step"] for e in events if e["event"] == "checkpoint_saved"][-1] == 4
    assert len({e["pid"] for e in events if e["event"] == "running"}) == 2

    straight, again = metrics(straight_run), metrics(run_dir)
    assert sorted(again) == [1, 2, 3, 4]
    assert [straight[s]["train/task_ids"] for s in range(1, 5)] == [again[s]["train/task_ids"] for s in range(1, 5)]
    info = json.loads((run_dir / "checkpoints" / "step_4" / "training_info.json").read_text())
    assert info["total_steps"] == 4

    from safetensors.torch import load_file

    a = load_file(str(straight_run / "checkpoints" / "step_4" / "policy" / "weights" / "model.safetensors"))
    b = load_file(str(run_dir / "checkpoints" / "step_4" / "policy" / "weights" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_segments_stop_at_the_requested_step_and_continue(tiny_model, task_files, tmp_path):
    first = _train(tiny_model, task_files, tmp_path, "grpo.stop_after_step=2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_2"]
    again = _train(tiny_model, task_files, tmp_path, "grpo.stop_after_step=2")
    assert again.returncode == 0 and "Nothing to do" in again.stdout


def _start_trainer(tiny_model, task_files, run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    args = ["train", "--config", str(CPU_CONFIG), *tiny_overrides(tiny_model, *task_files, run_dir), *extra]
    return subprocess.Popen(trainer_command(*args), env=trainer_env(), cwd=TRAINER_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"trainer exited (code {proc.returncode}) before {path.name}"
        assert time.time() < deadline, f"no {path.name} within {timeout_s} s"
        time.sleep(0.1)


def test_handoff_continues_in_one_process_and_matches_straight_run(straight_run, tiny_model, task_files, tmp_path):
    handoff = tmp_path / "handoff"
    proc = _start_trainer(tiny_model, task_files, tmp_path, "grpo.stop_after_step=2",
                          f"grpo.segment_handoff_dir={handoff}")
    try:
        _wait_for(handoff / "paused-2.json", proc)
        # Paused at a complete checkpoint, still alive, nothing half-written.
        assert (tmp_path / "checkpoints" / "step_2" / "training_info.json").is_file()
        assert not list((tmp_path / "checkpoints").glob("tmp_step_*"))
        assert sorted(metrics(tmp_path, "train")) == [1, 2]
        assert proc.poll() is None
        (handoff / "continue-2.json").write_text(json.dumps({"stop_after_step": 4}))
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert out.count("[grpo] training running from step") == 1  # one start for both segments
    events = trainer_events(tmp_path / "logs")
    assert [(e["event"], e["step"]) for e in events] == [("running", 0), ("checkpoint_saved", 2),
                                                         ("checkpoint_saved", 4)]
    assert "continuing to step 4 in the same process" in out
    assert (tmp_path / "checkpoints" / "step_4" / "training_info.json").is_file()

    from safetensors.torch import load_file

    a = load_file(str(straight_run / "checkpoints" / "step_4" / "policy" / "weights" / "model.safetensors"))
    b = load_file(str(tmp_path / "checkpoints" / "step_4" / "policy" / "weights" / "model.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_handoff_unanswered_exits_cleanly_at_its_checkpoint(tiny_model, task_files, tmp_path):
    handoff = tmp_path / "handoff"
    proc = _start_trainer(tiny_model, task_files, tmp_path, "grpo.stop_after_step=2",
                          f"grpo.segment_handoff_dir={handoff}", "grpo.segment_handoff_timeout_s=1")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert json.loads((handoff / "continue-2.json").read_text())["exit"] is True
    assert "exiting at step 2" in out
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_2"]
    # The checkpoint it left is a normal resume point.
    again = _train(tiny_model, task_files, tmp_path, "grpo.stop_after_step=3")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming from" in again.stdout and sorted(metrics(tmp_path, "train")) == [1, 2, 3]


def test_handoff_needs_a_stop_step(tiny_model, task_files, tmp_path):
    result = _train(tiny_model, task_files, tmp_path, f"grpo.segment_handoff_dir={tmp_path / 'h'}")
    assert result.returncode == 2
    assert "grpo.segment_handoff_dir" in result.stdout + result.stderr


def test_resume_refuses_other_data_set(straight_run, tiny_model, task_files, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(straight_run / "checkpoints", run_dir / "checkpoints")
    other = tmp_path / "other.jsonl"
    other.write_text(task_files[0].read_text().splitlines()[0] + "\n" + task_files[0].read_text())
    result = run_trainer("train", "--config", str(CPU_CONFIG),
                         *tiny_overrides(tiny_model, other, task_files[1], run_dir), "grpo.max_num_steps=6")
    assert result.returncode == 2
    failure = read_failure(run_dir / "logs")
    assert failure["type"] == "InvalidConfig" and "training data set" in failure["message"]


def test_resume_refuses_other_model(straight_run, task_files, tmp_path):
    import shutil

    from grpo_trainer.model.chat_format import install_chat_format
    from grpo_trainer.model.prepare import _tiny_random

    other_model = tmp_path / "other-model"
    model, tokenizer = _tiny_random(seed=7)
    model.save_pretrained(str(other_model))
    install_chat_format(tokenizer).save_pretrained(str(other_model))
    run_dir = tmp_path / "copy"
    shutil.copytree(straight_run / "checkpoints", run_dir / "checkpoints")
    result = run_trainer("train", "--config", str(CPU_CONFIG),
                         *tiny_overrides(other_model, *task_files, run_dir), "grpo.max_num_steps=6")
    assert result.returncode == 2
    failure = read_failure(run_dir / "logs")
    assert "different model" in failure["message"]


def test_evaluate_command_writes_accuracy_and_transcripts(straight_run, task_files, tmp_path):
    out = tmp_path / "eval.json"
    result = run_trainer("evaluate", "--model", str(straight_run / "checkpoints" / "step_4"),
                         "--tasks", str(task_files[1]), "--out", str(out), "--config", str(CPU_CONFIG),
                         "policy.generation.max_new_tokens=8")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = [json.loads(line) for line in task_files[1].read_text().splitlines()]
    assert report["num_tasks"] == len(rows) and 0.0 <= report["accuracy"] <= 1.0
    assert set(report["per_category"]) == {r["category"] for r in rows}
    assert len(report["transcripts"]) == 3 and report["transcripts"][0]["turns"]


def test_evaluate_ends_an_episode_that_would_outgrow_the_context(straight_run, task_files, tmp_path):
    # Every task's first prompt (system + tools + query) is longer than 64 tokens: no turn fits.
    out = tmp_path / "eval.json"
    result = run_trainer("evaluate", "--model", str(straight_run / "checkpoints" / "step_4"),
                         "--tasks", str(task_files[1]), "--out", str(out), "--config", str(CPU_CONFIG),
                         "policy.generation.max_new_tokens=8", "policy.max_total_sequence_length=64")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["avg_generated_tokens"] == 0 and report["avg_tool_calls"] == 0
    for transcript in report["transcripts"]:
        assert transcript["turns"] == [{"role": "assistant", "text": "",
                                        "stopped": "context full (policy.max_total_sequence_length)"}]


def test_task_solved_counts_only_a_full_outcome():
    from grpo_trainer.training.grpo import _task_solved

    class Env:
        def __init__(self, outcome: float) -> None:
            self._outcome = outcome

        def outcome(self) -> float:
            return self._outcome

    # 0.4 is what shaping can pay a failed rollout: it must not count as solved
    assert _task_solved()(environments=[Env(1.0), Env(0.0), Env(0.4)]) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("setting", [None, "false"])
def test_activation_checkpointing_reaches_trl(tiny_model, task_files, tmp_path, setting):
    """On by default (TRL's memory-saving default); `policy.activation_checkpointing=false` trains without
    recomputation, which the GPU config uses for a small model."""
    from grpo_trainer.training.grpo import build_trainer

    train, val = task_files
    extra = [] if setting is None else [f"policy.activation_checkpointing={setting}"]
    cfg, _ = load_config(CPU_CONFIG, tiny_overrides(tiny_model, train, val, tmp_path) + extra)
    trainer, _, _ = build_trainer(cfg)
    expected = setting is None
    # transformers' Trainer turns it on in the model when training starts, from this argument
    assert trainer.args.gradient_checkpointing is expected


@pytest.mark.parametrize("varlen", [False, True])
def test_packed_sequences_train_on_fewer_tokens(tiny_model, task_files, tmp_path, varlen):
    """`policy.packed_sequences=true` trains through the real trainer, its gradient's forwards on packed rows
    (training/packed_sequences.py; the equivalence of log-probs and gradient, and rows sharing a sequence,
    are test_packed_sequences.py's), also attending through `policy.packed_varlen_attention`
    (test_varlen_packed_attention.py)."""
    result = _train(tiny_model, task_files, tmp_path, "grpo.max_num_steps=2", "checkpointing.enabled=false",
                    "grpo.val_at_start=false", "grpo.val_period=0", "policy.packed_sequences=true",
                    f"policy.packed_varlen_attention={str(varlen).lower()}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("through variable-length SDPA one row at a time" in result.stdout) is varlen
    train = metrics(tmp_path, "train")
    assert sorted(train) == [1, 2]
    for record in train.values():
        # The tiny tasks' rows are all about one length (a long prompt, at most 16 new tokens a turn), so no
        # two share a sequence here; the packed forwards must still never run on more than TRL's padding.
        assert 0 < record["train/packed_tokens"] <= record["train/padded_tokens"]
        assert record["train/trained_tokens"] <= record["train/packed_tokens"]


def test_kl_penalty_scores_the_reference_model_through_both_training_switches(tiny_model, task_files, tmp_path):
    """With `loss_fn.reference_policy_kl_penalty` TRL also scores a frozen copy of the starting model. Packed and
    compiled, that copy must get its own compiled view: were it scored through the policy's, the KL would
    stay 0 after the policy has moved."""
    result = _train(tiny_model, task_files, tmp_path, "grpo.max_num_steps=2", "checkpointing.enabled=false",
                    "grpo.val_at_start=false", "grpo.val_period=0", "loss_fn.reference_policy_kl_penalty=0.05",
                    "policy.packed_sequences=true", "policy.compiled_training_forward=true")
    assert result.returncode == 0, result.stderr[-3000:]
    train = metrics(tmp_path, "train")
    assert sorted(train) == [1, 2]
    assert train[1]["train/kl"] == pytest.approx(0.0, abs=1e-4)  # the policy is still the reference
    assert 0 < train[2]["train/kl"] < float("inf")
    assert train[2]["train/skipped_updates"] == 0


@pytest.mark.parametrize("setting", [None, "true"])
def test_training_forward_switches_reach_the_trainer(tiny_model, task_files, tmp_path, setting):
    """`policy.packed_sequences`, `policy.packed_varlen_attention` and `policy.compiled_training_forward` are off
    unless asked for."""
    from grpo_trainer.training.grpo import build_trainer

    train, val = task_files
    keys = ("policy.packed_sequences", "policy.packed_varlen_attention", "policy.compiled_training_forward")
    extra = [] if setting is None else [f"{key}={setting}" for key in keys]
    cfg, _ = load_config(CPU_CONFIG, tiny_overrides(tiny_model, train, val, tmp_path) + extra)
    trainer, _, _ = build_trainer(cfg)
    expected = setting is not None
    assert trainer.packed_sequences is expected and trainer.compiled_training_forward is expected
    assert trainer.packed_varlen_attention is expected


def test_each_turn_gets_max_new_tokens_and_the_rollout_the_context_left(tiny_model, task_files, tmp_path):
    """Training rollouts are bounded as evaluation's are: max_new_tokens per turn, the whole
    conversation within policy.max_total_sequence_length. TRL's max_completion_length is the
    whole rollout's budget (tool results included), so it must not be one turn's tokens."""
    from grpo_trainer.rollout.episodes import rollout_token_budget, turn_prompt_ids
    from grpo_trainer.rollout.tool_env import tool_schemas_for, tool_set_for
    from grpo_trainer.training.grpo import build_trainer, load_split

    train, val = task_files
    cfg, _ = load_config(CPU_CONFIG, tiny_overrides(tiny_model, train, val, tmp_path)
                         + ["policy.max_total_sequence_length=3000"])
    trainer, _, _ = build_trainer(cfg)
    tasks = load_split(str(train), None)
    longest = max(len(turn_prompt_ids(trainer.processing_class, t.messages,
                                 tool_schemas_for(tool_set_for(t.category, "domain")))) for t in tasks)
    assert 300 < longest < 3000 - 16  # system prompt and the domain tools
    assert trainer.args.max_completion_length == 3000 - longest
    assert trainer.generation_config.max_new_tokens == 16
    # A context too small for more than the prompt still leaves one turn.
    assert rollout_token_budget(trainer.processing_class, tasks, tool_mode="domain", max_new_tokens=16,
                                max_total_tokens=longest + 5) == 16
