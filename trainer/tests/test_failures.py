"""Failure reports: real faults produce the failure type the pipeline acts on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grpo_trainer.errors import InvalidDataError, RateLimitedError
from grpo_trainer.failures import classify
from grpo_trainer.training.local_ray import start_local_head

from .conftest import CPU_CONFIG, TRAINER_ROOT, metrics, tiny_overrides, trainer_command, trainer_env



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cpu_allocation_failure_under_address_space_limit_is_out_of_memory(tmp_path):
    # A real allocation failure: the process caps its own address space, then
    # asks torch for more than is left.
    script = f"""
import resource, sys
sys.path.insert(0, {str(TRAINER_ROOT)!r})
import torch
from grpo_trainer.failures import write_failure
with open('/proc/self/status') as fh:
    vm = next(int(l.split()[1]) * 1024 for l in fh if l.startswith('VmSize'))
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), vm + (256 << 20)))
try:
    torch.empty(1 << 30, dtype=torch.float32)  # 4 GiB
except Exception as exc:
    print(write_failure({str(tmp_path)!r}, exc)['type'])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "OutOfMemory", out.stderr
    report = json.loads((tmp_path / "failure.json").read_text())
    assert "allocate" in report["message"]


def test_write_error_under_file_size_limit_is_storage_error(tmp_path):
    # A real EFBIG: the process caps the size of files it may write, then saves
    # a "checkpoint" larger than that (Python ignores SIGXFSZ, so write() fails).
    script = f"""
import resource, sys
sys.path.insert(0, {str(TRAINER_ROOT)!r})
from grpo_trainer.failures import write_failure
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
try:
    with open({str(tmp_path / "model.safetensors")!r}, "wb") as fh:
        fh.write(b"0" * (4 << 20))
except Exception as exc:
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    print(write_failure({str(tmp_path)!r}, exc)['type'])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "StorageError", out.stderr
    assert "File too large" in json.loads((tmp_path / "failure.json").read_text())["message"]


def test_rate_limit_report_carries_retry_after(tmp_path):
    from grpo_trainer.failures import write_failure

    report = write_failure(tmp_path, RateLimitedError("429 Too Many Requests", 12.0))
    assert report["type"] == "RateLimited"
    assert json.loads((tmp_path / "failure.json").read_text())["retry_after"] == 12.0


def test_classification_table():
    import torch

    assert classify(MemoryError()) == "OutOfMemory"
    assert classify(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")) == "OutOfMemory"
    assert classify(RuntimeError("CUDA error: out of memory")) == "OutOfMemory"
    assert classify(RuntimeError("ValueError: No available memory for the cache blocks")) == "OutOfMemory"
    assert classify(InvalidDataError("x.jsonl", 3, "bad")) == "InvalidData"
    assert classify(RateLimitedError("429")) == "RateLimited"
    try:
        try:
            raise MemoryError("inner")
        except MemoryError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert classify(outer) == "OutOfMemory"
    assert classify(ValueError("something else")) == "Unknown"


def test_unreachable_ray_cluster_fails_fast_as_ray_failure(tiny_model, task_files, tmp_path):
    env = trainer_env()
    env["RAY_ADDRESS"] = f"127.0.0.1:{_free_port()}"
    started = time.time()
    result = subprocess.run(trainer_command("train", "--config", str(CPU_CONFIG),
                                            *tiny_overrides(tiny_model, *task_files, tmp_path)),
                            env=env, capture_output=True, text=True, timeout=120, cwd=TRAINER_ROOT)
    assert result.returncode == 1
    assert time.time() - started < 60
    assert json.loads((tmp_path / "logs" / "failure.json").read_text())["type"] == "RayFailure"


@pytest.fixture
def ray_head():
    head = start_local_head(num_cpus=2)
    try:
        yield head
    finally:
        head.stop()


def test_training_runs_on_a_ray_cluster_and_dies_cleanly_with_it(ray_head, tiny_model, task_files, tmp_path):
    env = trainer_env()
    env.update(ray_head.client_env())
    run_dir = tmp_path / "run"
    args = ["train", "--config", str(CPU_CONFIG), *tiny_overrides(tiny_model, *task_files, run_dir, steps=8)]
    proc = subprocess.Popen(trainer_command(*args), env=env, cwd=TRAINER_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "step_2").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.5)
    os.killpg(ray_head.process.pid, signal.SIGKILL)  # the head (GCS + raylet) dies mid-run
    killed_at = time.time()
    try:
        proc.wait(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("trainer hung after the Ray head died")
    assert proc.returncode != 0
    assert time.time() - killed_at < 180
    failure = json.loads((run_dir / "logs" / "failure.json").read_text())
    assert failure["type"] == "RayFailure"
    assert failure["step"] is not None and failure["step"] >= 2
    assert 1 in metrics(run_dir)
