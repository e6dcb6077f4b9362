"""Tests of the NeMo RL TEST DOUBLE itself (test/doubles/nemo-rl-TEST-DOUBLE, not NeMo RL).

The double is copied to a temp dir, `uv sync --locked` runs there once per session, and every
run goes through `uv run python examples/nemo_gym/run_grpo_nemo_gym.py --config=... overrides`
from that copy's root, as the pipeline launches a real NeMo RL checkout. Data files are tiny and
generated here; FAKE_NRL_STEP_SECONDS=0 keeps the runs fast.

    PYTHONPATH=trainer .grpo/envs/builtin/bin/python -m pytest -q trainer/tests/test_nemo_rl_double.py
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOUBLE = REPO_ROOT / "test" / "doubles" / "nemo-rl-TEST-DOUBLE"
SCRIPT = "examples/nemo_gym/run_grpo_nemo_gym.py"
CONFIG = "examples/nemo_gym/grpo_workplace_assistant_nemotron_nano_v2_9b.yaml"
BAR = "=" * 25
SETTLED = {"FAKE_NRL_STEP_SECONDS": "0"}


def find_uv(scratch: Path) -> str:
    """uv from PATH, else the pipeline's tool venv, else a fresh pip install into a temp venv."""
    found = shutil.which("uv")
    if found:
        return found
    tool = REPO_ROOT / ".grpo" / "tools" / "venv" / "bin" / "uv"
    if tool.exists():
        return str(tool)
    venv = scratch / "uv-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "uv"], check=True, timeout=600)
    return str(venv / "bin" / "uv")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FAKE_NRL_", "WANDB_", "SLURM_", "NRL_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(SETTLED)
    env.update(extra or {})
    return env


@dataclass
class Checkout:
    root: Path
    uv: str

    def data(self, name: str, rows: int, categories: bool = True) -> str:
        """A JSONL task file under data/ (relative path, as NeMo RL resolves it from the cwd)."""
        path = self.root / "data" / f"{name}.jsonl"
        path.parent.mkdir(exist_ok=True)
        with open(path, "w") as f:
            for i in range(rows):
                row = {"id": i, "responses_create_params": {"input": [{"role": "user", "content": f"task {i}"}]},
                       "ground_truth": [], "environment_name": "workplace_assistant"}
                if categories:
                    row["category"] = ["workplace_assistant_email", "workplace_assistant_calendar"][i % 2]
                f.write(json.dumps(row) + "\n")
        return f"data/{name}.jsonl"

    def command(self, *overrides: str) -> list[str]:
        return [self.uv, "run", "python", SCRIPT, f"--config={CONFIG}", *overrides]

    def run(self, *overrides: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*overrides), cwd=self.root, env=clean_env(env), capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    scratch = tmp_path_factory.mktemp("nemo-rl-double")
    uv = find_uv(scratch)
    root = scratch / "RL"
    shutil.copytree(DOUBLE, root, ignore=shutil.ignore_patterns(".venv", "__pycache__", "results", "logs", "data"))
    subprocess.run([uv, "sync", "--locked"], cwd=root, env=clean_env(), check=True, capture_output=True, timeout=600)
    return Checkout(root, uv)


def base_overrides(checkout: Checkout, name: str, train_rows: int = 40, val_rows: int = 8, **extra: str) -> list[str]:
    """A small run: 4 prompts x 2 generations per step, its own log and checkpoint dirs."""
    overrides = {
        "++logger.log_dir": f"results/{name}/logs",
        "++checkpointing.checkpoint_dir": f"results/{name}/checkpoints",
        "data.train.data_path": checkout.data(f"{name}-train", train_rows),
        "data.validation.data_path": checkout.data(f"{name}-val", val_rows),
        "grpo.num_prompts_per_step": "4",
        "grpo.num_generations_per_prompt": "2",
        "logger.wandb_enabled": "false",
    }
    overrides.update(extra)
    return [f"{k}={v}" for k, v in overrides.items()]


def lines(proc: subprocess.CompletedProcess) -> list[str]:
    return proc.stdout.splitlines()


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# ------------------------------------------------------------------------------------------------
# Overrides (struct mode)
# ------------------------------------------------------------------------------------------------
def test_unknown_key_without_plus_fails_like_nemo_rl(checkout: Checkout) -> None:
    proc = checkout.run(*base_overrides(checkout, "unknown"), "grpo.stop_after_step=6")
    assert proc.returncode == 1
    assert f"Loaded configuration from: {CONFIG}" in proc.stdout
    assert "Overrides: [" in proc.stdout and "'grpo.stop_after_step=6']" in proc.stdout
    assert ("OverridesError: Failed to parse Hydra overrides: Could not override 'grpo.stop_after_step'.\n"
            "To append to your config use +grpo.stop_after_step=6") in proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert not (checkout.root / "results" / "unknown" / "logs").exists()  # fails before exp_NNN

    proc = checkout.run(*base_overrides(checkout, "unknown"), "+grpo.max_num_steps=3")
    assert proc.returncode == 1
    assert "Failed to parse Hydra overrides: Could not append to config. An item is already at 'grpo.max_num_steps'." \
        in proc.stderr


def test_plus_plus_sets_new_and_existing_keys(checkout: Checkout) -> None:
    proc = checkout.run(*base_overrides(checkout, "plusplus"), "++grpo.stop_after_step=6", "++grpo.max_num_steps=1",
                        "+logger.extra_tag=abc", "policy.generation.vllm_cfg.gpu_memory_utilization=0.7",
                        "policy.megatron_cfg.optimizer.adam_eps=1e-6")
    assert proc.returncode == 0, proc.stderr
    saved = yaml.safe_load((checkout.root / "results/plusplus/checkpoints/step_1/config.yaml").read_text())
    assert saved["grpo"]["stop_after_step"] == 6
    assert saved["grpo"]["max_num_steps"] == 1
    assert saved["logger"]["extra_tag"] == "abc"
    assert saved["policy"]["generation"]["vllm_cfg"]["gpu_memory_utilization"] == 0.7
    assert saved["policy"]["megatron_cfg"]["optimizer"]["adam_eps"] == 1e-6
    # resolved interpolations: 4 prompts x 2 generations
    assert saved["policy"]["train_global_batch_size"] == 8
    assert saved["policy"]["generation"]["val_temperature"] == 1.0


# ------------------------------------------------------------------------------------------------
# A run: stdout, checkpoints, TensorBoard
# ------------------------------------------------------------------------------------------------
def test_three_step_run(checkout: Checkout) -> None:
    ckpt = checkout.root / "results/run3/checkpoints"
    stale = ckpt / "tmp_step_2"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("left by an interrupted save")
    proc = checkout.run(*base_overrides(checkout, "run3", **{
        "grpo.max_num_steps": "3", "grpo.val_period": "2", "checkpointing.save_period": "2",
        "logger.tensorboard_enabled": "true"}))
    assert proc.returncode == 0, proc.stderr
    out = lines(proc)
    assert "📊 Using log directory: results/run3/logs/exp_001" in out
    assert "📊 Using checkpoint directory: results/run3/checkpoints" in out
    assert "🔍 Running initial validation..." in out
    assert f"{BAR} Epoch 1/1 {BAR}" in out
    assert [line for line in out if line.startswith(f"{BAR} Step")] == [f"{BAR} Step {i}/3 {BAR}" for i in (1, 2, 3)]
    assert sum(line.startswith("  • Avg Reward: ") for line in out) == 3
    assert sum(line.startswith("  • Loss: ") for line in out) == 3
    assert [line for line in out if line.startswith("▶ Starting validation")] == [
        "▶ Starting validation at step 0...", "▶ Starting validation at step 2..."]
    assert sum(line.startswith("    • Accuracy: 0.") for line in out) == 2
    assert "Saving checkpoint for step 2..." in out and "Saving checkpoint for step 3..." in out
    assert any(line.startswith("Removed stale tmp_step_2 in ") for line in out)
    assert out[-2:] == ["Max number of steps has been reached, stopping training early",
                        "🛑 Shutting down environment nemo_gym..."]

    assert sorted(p.name for p in ckpt.iterdir()) == ["latest_checkpoint_status.json", "step_2", "step_3"]
    assert not (ckpt / "step_2" / "junk").exists()
    info2 = json.loads((ckpt / "step_2/training_info.json").read_text())
    info3 = json.loads((ckpt / "step_3/training_info.json").read_text())
    for info, step in ((info2, 2), (info3, 3)):
        assert info["total_steps"] == step and info["current_step"] == step and info["current_epoch"] == 0
        assert info["consumed_samples"] == 4 * step and info["total_valid_tokens"] > 0
    assert "val:accuracy" in info2 and info2["val_reward"] == info2["val:accuracy"]
    assert "val:accuracy" not in info3 and "val_reward" not in info3
    for step in (2, 3):
        step_dir = ckpt / f"step_{step}"
        assert (step_dir / "config.yaml").is_file() and (step_dir / "train_dataloader.pt").is_file()
        assert any((step_dir / "policy/weights/iter_0000000").iterdir())
        assert (step_dir / "policy/tokenizer").is_dir()
    status = json.loads((ckpt / "latest_checkpoint_status.json").read_text())
    assert status["last_checkpoint_step"] == 3 and status["last_successful_ckpt_save_completion"] <= time.time()

    tb = scalars(checkout.root / "results/run3/logs/exp_001/tensorboard")
    assert [s for s, _ in tb["train/reward"]] == [1, 2, 3]
    assert [s for s, _ in tb["train/loss"]] == [1, 2, 3]
    assert [s for s, _ in tb["validation/accuracy"]] == [0, 2]
    assert dict(tb["validation/accuracy"])[2] == pytest.approx(info2["val:accuracy"], abs=1e-6)
    printed = [float(line.split(": ")[1]) for line in out if line.startswith("  • Avg Reward: ")]
    assert [round(v, 4) for _, v in tb["train/reward"]] == printed


def test_run_length_is_bounded_by_epochs(checkout: Checkout) -> None:
    # 10 rows / 4 prompts per step = 2 steps per epoch (drop_last); 2 epochs -> 4 steps
    proc = checkout.run(*base_overrides(checkout, "epochs", train_rows=10, **{
        "grpo.max_num_epochs": "2", "grpo.val_at_start": "false"}))
    assert proc.returncode == 0, proc.stderr
    out = lines(proc)
    assert [line for line in out if line.startswith(BAR + " ")] == [
        f"{BAR} Epoch 1/2 {BAR}", f"{BAR} Step 1/2 {BAR}", f"{BAR} Step 2/2 {BAR}",
        f"{BAR} Epoch 2/2 {BAR}", f"{BAR} Step 1/2 {BAR}", f"{BAR} Step 2/2 {BAR}"]
    assert "Max number of steps has been reached, stopping training early" not in out
    ckpt = checkout.root / "results/epochs/checkpoints"
    assert sorted(p.name for p in ckpt.glob("step_*")) == ["step_4"]  # save_period 6: only the last step
    info = json.loads((ckpt / "step_4/training_info.json").read_text())
    assert (info["current_step"], info["current_epoch"], info["total_steps"]) == (2, 1, 4)


def test_missing_data_file_names_the_path(checkout: Checkout) -> None:
    proc = checkout.run(*base_overrides(checkout, "nodata"), "data.train.data_path=data/absent.jsonl")
    assert proc.returncode == 1
    assert "FileNotFoundError: [Errno 2] No such file or directory: 'data/absent.jsonl'" in proc.stderr


# ------------------------------------------------------------------------------------------------
# Retention and resume
# ------------------------------------------------------------------------------------------------
def fake_step(ckpt: Path, step: int, metric: float | None) -> None:
    step_dir = ckpt / f"step_{step}"
    step_dir.mkdir(parents=True)
    info = {"consumed_samples": 4 * step, "current_step": step, "current_epoch": 0, "total_steps": step,
            "total_valid_tokens": 1000 * step}
    if metric is not None:
        info["val:accuracy"] = metric
        info["val_reward"] = metric
    (step_dir / "training_info.json").write_text(json.dumps(info))


def test_retention_follows_nemo_rl_head(checkout: Checkout) -> None:
    ckpt = checkout.root / "results/retention/checkpoints"
    fake_step(ckpt, 2, 0.5)
    fake_step(ckpt, 4, 0.9)
    fake_step(ckpt, 6, None)
    fake_step(ckpt, 7, 0.99)  # not periodic (7 % 2): deleted once it is no longer the newest
    proc = checkout.run(*base_overrides(checkout, "retention", **{
        "grpo.max_num_steps": "8", "checkpointing.save_period": "2", "checkpointing.keep_top_k": "2"}))
    assert proc.returncode == 0, proc.stderr
    out = lines(proc)
    assert [line for line in out if line.startswith(f"{BAR} Step")] == [f"{BAR} Step 8/8 {BAR}"]
    assert [line for line in out if line.startswith("Removing checkpoint")] == [
        "Removing checkpoint results/retention/checkpoints/step_6 (step 6)",
        "Removing checkpoint results/retention/checkpoints/step_7 (step 7)"]
    # periodic top-2 by val:accuracy (4: 0.9, 2: 0.5; step 8 has no metric) plus the newest (8)
    assert sorted(p.name for p in ckpt.glob("step_*")) == ["step_2", "step_4", "step_8"]


def test_retention_ties_prefer_the_higher_step(checkout: Checkout) -> None:
    proc = checkout.run(*base_overrides(checkout, "ties", **{
        "grpo.max_num_steps": "5", "checkpointing.save_period": "1", "checkpointing.keep_top_k": "2",
        "grpo.val_at_start": "false"}))
    assert proc.returncode == 0, proc.stderr
    ckpt = checkout.root / "results/ties/checkpoints"
    # no checkpoint carries val:accuracy (val_period 10): retention degrades to recency
    assert sorted(p.name for p in ckpt.glob("step_*")) == ["step_4", "step_5"]
    assert "Removing checkpoint results/ties/checkpoints/step_1 (step 1)" in proc.stdout


def test_resume_continues_the_step_count(checkout: Checkout) -> None:
    common = base_overrides(checkout, "resume", **{"checkpointing.save_period": "2",
                                                    "logger.tensorboard_enabled": "true"})
    first = checkout.run(*common, "grpo.max_num_steps=2")
    assert first.returncode == 0, first.stderr
    tmp = checkout.root / "results/resume/checkpoints/tmp_step_9"  # an interrupted save: ignored
    tmp.mkdir()
    (tmp / "training_info.json").write_text(json.dumps({"total_steps": 9, "current_step": 9}))
    second = checkout.run(*common, "grpo.max_num_steps=4")
    assert second.returncode == 0, second.stderr
    out = lines(second)
    assert "📊 Using log directory: results/resume/logs/exp_002" in out
    assert "🔍 Running initial validation..." not in out
    assert [line for line in out if line.startswith(f"{BAR} Step")] == [f"{BAR} Step {i}/4 {BAR}" for i in (3, 4)]
    tb = scalars(checkout.root / "results/resume/logs/exp_002/tensorboard")
    assert [s for s, _ in tb["train/reward"]] == [3, 4]
    info = json.loads((checkout.root / "results/resume/checkpoints/step_4/training_info.json").read_text())
    assert (info["total_steps"], info["consumed_samples"]) == (4, 16)


# ------------------------------------------------------------------------------------------------
# Faults
# ------------------------------------------------------------------------------------------------
FAULT_TEXT = {
    "oom": ["ray.exceptions.RayTaskError(OutOfMemoryError): ray::MegatronPolicyWorker.train()",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate "],
    "ray": ["ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task."],
    "429": ["429 Client Error: Too Many Requests for url: https://huggingface.co/"],
    "config": ["omegaconf.errors.MissingMandatoryValue: Missing mandatory value: "],
}


@pytest.mark.parametrize("kind", sorted(FAULT_TEXT))
def test_fault_kinds(checkout: Checkout, kind: str) -> None:
    overrides = base_overrides(checkout, f"fault-{kind}", **{"grpo.max_num_steps": "3"})
    env = {"FAKE_NRL_FAIL_WITH": kind, "FAKE_NRL_FAIL_AT_STEP": "2", "FAKE_NRL_FAIL_ONCE": "1"}
    proc = checkout.run(*overrides, env=env)
    assert proc.returncode == 1
    for text in FAULT_TEXT[kind]:
        assert text in proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr
    assert f"{BAR} Step 2/3 {BAR}" in proc.stdout and f"{BAR} Step 3/3 {BAR}" not in proc.stdout
    assert lines(proc)[-1] == "🛑 Shutting down environment nemo_gym..."
    # once per checkpoint dir (marker file there): the relaunch (a fresh start: nothing was saved yet) succeeds
    again = checkout.run(*overrides, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{BAR} Step 3/3 {BAR}" in again.stdout


def test_fault_at_startup(checkout: Checkout) -> None:
    proc = checkout.run(*base_overrides(checkout, "startup429"), env={"FAKE_NRL_FAIL_WITH": "429",
                                                                     "FAKE_NRL_FAIL_AT_STEP": "0"})
    assert proc.returncode == 1
    assert "429 Client Error: Too Many Requests for url: https://huggingface.co/nvidia/NVIDIA-Nemotron-Nano-9B-v2/" \
        in proc.stderr
    assert "📊 Using log directory" in proc.stdout and "Final config:" not in proc.stdout


def test_hang_prints_nothing_more(checkout: Checkout) -> None:
    overrides = base_overrides(checkout, "hang", **{"grpo.max_num_steps": "3"})
    env = clean_env({"FAKE_NRL_FAIL_WITH": "hang", "FAKE_NRL_FAIL_AT_STEP": "2"})
    log = checkout.root / "results" / "hang.log"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as fh:
        # Own session: `uv run` does not pass SIGKILL on, so the whole group is killed below.
        proc = subprocess.Popen(checkout.command(*overrides), cwd=checkout.root, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + 60
            marker = f"{BAR} Step 2/3 {BAR}\n▶ Preparing batch...\n▶ Generating responses for batch of size 8...\n"
            while marker not in log.read_text():
                assert proc.poll() is None and time.time() < deadline, log.read_text()
                time.sleep(0.1)
            size = len(log.read_text())
            time.sleep(1.5)
            assert proc.poll() is None
            assert len(log.read_text()) == size
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_oom_unless_override_was_given(checkout: Checkout) -> None:
    overrides = base_overrides(checkout, "oomunless", **{"grpo.max_num_steps": "1"})
    env = {"FAKE_NRL_OOM_UNLESS": "policy.generation.vllm_cfg.gpu_memory_utilization=0.7"}
    proc = checkout.run(*overrides, env=env)
    assert proc.returncode == 1
    assert "torch.OutOfMemoryError: CUDA out of memory." in proc.stderr
    assert f"{BAR} Step 1/1 {BAR}" in proc.stdout
    proc = checkout.run(*overrides, "policy.generation.vllm_cfg.gpu_memory_utilization=0.7", env=env)
    assert proc.returncode == 0, proc.stderr
    proc = checkout.run(*overrides, "++policy.generation.vllm_cfg.gpu_memory_utilization=0.70", env=env)
    assert proc.returncode == 0, proc.stderr


def test_wandb_needs_an_api_key(checkout: Checkout) -> None:
    overrides = [o for o in base_overrides(checkout, "wandb", **{"grpo.max_num_steps": "1"})
                 if not o.startswith("logger.wandb_enabled")]
    proc = checkout.run(*overrides)
    assert proc.returncode == 1
    assert "wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])" in proc.stderr
    assert "wandb.errors.errors.UsageError: api_key not configured (no-tty)" in proc.stderr
    proc = checkout.run(*overrides, env={"WANDB_API_KEY": "test-double-key"})
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------
# Evaluation mode and the converter
# ------------------------------------------------------------------------------------------------
def collect(checkout: Checkout, name: str, model: str, *extra: str) -> list[dict]:
    proc = checkout.run(*base_overrides(checkout, name, val_rows=60), f"policy.model_name={model}",
                        "++env.nemo_gym.is_trajectory_collection=true", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "🔍 Running trajectory collection..." in proc.stdout
    assert f"{BAR} Step" not in proc.stdout
    assert not (checkout.root / f"results/{name}/checkpoints").exists()
    path = checkout.root / f"results/{name}/logs/exp_001/trajectory_collection.jsonl"
    assert f"Logged data to results/{name}/logs/exp_001/trajectory_collection.jsonl" in proc.stdout
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_trajectory_collection_and_converted_checkpoint(checkout: Checkout) -> None:
    base = collect(checkout, "eval-base", "nvidia/NVIDIA-Nemotron-Nano-9B-v2")
    assert len(base) == 60  # one line per validation row (the train file has 40)
    assert [r["id"] for r in base] == list(range(60))
    assert {r["reward"] for r in base} <= {0.0, 1.0}
    assert base[0]["category"] == "workplace_assistant_email" and base[1]["category"] == "workplace_assistant_calendar"

    train = checkout.run(*base_overrides(checkout, "to-convert", **{"grpo.max_num_steps": "6"}))
    assert train.returncode == 0, train.stderr
    step = checkout.root / "results/to-convert/checkpoints/step_6"
    convert = [checkout.uv, "run", "python", "examples/converters/convert_megatron_to_hf.py",
               "--config", str(step / "config.yaml"), "--megatron-ckpt-path",
               str(step / "policy/weights/iter_0000000"), "--hf-ckpt-path", "results/hf/step_6"]
    proc = subprocess.run(convert, cwd=checkout.root, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    hf_config = json.loads((checkout.root / "results/hf/step_6/config.json").read_text())
    assert hf_config["nemo_rl_test_double"]["source_step"] == 6
    assert (checkout.root / "results/hf/step_6/tokenizer_config.json").is_file()
    again = subprocess.run(convert, cwd=checkout.root, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "FileExistsError: HF checkpoint already exists" in again.stderr

    trained = collect(checkout, "eval-trained", "results/hf/step_6")
    solved_base = {r["id"] for r in base if r["reward"] == 1.0}
    solved_trained = {r["id"] for r in trained if r["reward"] == 1.0}
    assert solved_base < solved_trained  # a strict superset: the trained checkpoint solves more

    # As in NeMo RL, setup() loads the newest step_N of checkpoint_dir in evaluation mode too: the
    # base model name with the training run's checkpoint dir evaluates that checkpoint.
    loaded = collect(checkout, "eval-ckptdir", "nvidia/NVIDIA-Nemotron-Nano-9B-v2",
                     "++checkpointing.checkpoint_dir=results/to-convert/checkpoints")
    assert [r["reward"] for r in loaded] == [r["reward"] for r in trained]


# ------------------------------------------------------------------------------------------------
# ray.sub
# ------------------------------------------------------------------------------------------------
def raysub(checkout: Checkout, job: str, command: str, **extra: str) -> subprocess.CompletedProcess:
    env = clean_env({"SLURM_JOB_ID": job, "SLURM_SUBMIT_DIR": str(checkout.root), "CONTAINER": "nvcr.io/x:y",
                     "MOUNTS": "/lustre:/lustre", "COMMAND": command, "GPUS_PER_NODE": "8", **extra})
    return subprocess.run(["bash", "ray.sub"], cwd=checkout.root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ray_sub_runs_the_driver_and_returns_its_code(checkout: Checkout) -> None:
    proc = raysub(checkout, "7001", "echo driver in $PWD; exit 7")
    assert proc.returncode == 7
    logs = checkout.root / "7001-logs"
    assert (logs / "ray-driver.log").read_text() == f"driver in {checkout.root}\n"
    assert "All workers connected!" in proc.stdout
    assert "Number of actors online: 8/8" in proc.stdout
    assert proc.stdout.rstrip().endswith("ray.sub exiting (exit_code=7)")
    assert all(line.startswith(("[NRL_PHASE][", "[INFO]")) for line in lines(proc))
    assert "--container-image=nvcr.io/x:y" in (logs / "ray-head.log").read_text()
    assert "--container-mounts=/lustre:/lustre" in (logs / "ray-head.log").read_text()

    proc = raysub(checkout, "7001", "true", SLURM_RESTART_COUNT="1")
    assert proc.returncode == 0
    assert (checkout.root / "7001-1-logs" / "ray-driver.log").exists()

    header = (DOUBLE / "ray.sub").read_text().splitlines()
    assert header[0] == "#!/bin/bash" and "#SBATCH --dependency=singleton" in header[:10]


def test_ray_sub_runs_the_double(checkout: Checkout) -> None:
    command = shlex.join(checkout.command(*base_overrides(checkout, "raysub", **{"grpo.max_num_steps": "1"})))
    proc = raysub(checkout, "7002", command)
    assert proc.returncode == 0, (checkout.root / "7002-logs/ray-driver.log").read_text()
    driver = (checkout.root / "7002-logs/ray-driver.log").read_text()
    assert f"{BAR} Step 1/1 {BAR}" in driver
    assert "CONTAINER INIT TIMING" in driver


def test_ray_sub_requires_container(checkout: Checkout) -> None:
    env = clean_env({"SLURM_JOB_ID": "7003", "SLURM_SUBMIT_DIR": str(checkout.root), "MOUNTS": "/a:/a",
                     "COMMAND": "true"})
    proc = subprocess.run(["bash", "ray.sub"], cwd=checkout.root, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "CONTAINER: unbound variable" in proc.stderr
    assert "ray.sub exiting (exit_code=1)" in proc.stdout
