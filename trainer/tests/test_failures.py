"""Failure reports: real faults produce the failure type the pipeline acts on."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from grpo_trainer import contracts
from grpo_trainer.errors import InvalidConfigError, InvalidDataError, RateLimitedError
from grpo_trainer.failures import FAILURE_TEXTS, classify, text_type, write_failure
from grpo_trainer.training.local_ray import free_ports, start_local_head

from .conftest import (
    CPU_CONFIG,
    TRAINER_ROOT,
    contract_validator,
    metrics,
    read_failure,
    tiny_overrides,
    trainer_command,
    trainer_env,
)


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
    report = read_failure(tmp_path)
    assert "allocate" in report["message"]


def _failure_type_of_write_over_size_limit(tmp_path, write: str, imports: str = "") -> str:
    """Run `write` (Python source) in a child whose files may not exceed 1 MiB, and return the type
    write_failure gives its exception (Python ignores SIGXFSZ, so the write itself fails)."""
    script = f"""
import resource, sys
{imports}
sys.path.insert(0, {str(TRAINER_ROOT)!r})
from grpo_trainer.failures import write_failure
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
try:
    {write}
except Exception as exc:
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    print(write_failure({str(tmp_path)!r}, exc)['type'])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip(), out.stderr
    return out.stdout.strip()


def test_write_error_under_file_size_limit_is_storage_error(tmp_path):
    # A real EFBIG: a "checkpoint" larger than the process may write.
    write = f'open({str(tmp_path / "model.safetensors")!r}, "wb").write(b"0" * (4 << 20))'
    assert _failure_type_of_write_over_size_limit(tmp_path, write) == "StorageError"
    assert "File too large" in read_failure(tmp_path)["message"]


def test_torch_save_over_file_size_limit_is_storage_error(tmp_path):
    # torch.save's writer says only "unexpected pos A vs B" when a write falls short (no errno in the
    # text; seen when this machine's disk filled up): a real short write under a file-size limit.
    write = f'torch.save({{"weights": torch.zeros(1 << 20)}}, {str(tmp_path / "optimizer.pt")!r})'
    assert _failure_type_of_write_over_size_limit(tmp_path, write, imports="import torch") == "StorageError"
    assert "inline_container" in read_failure(tmp_path)["message"]


def test_rate_limit_report_carries_retry_after(tmp_path):
    report = write_failure(tmp_path, RateLimitedError("429 Too Many Requests", 12.0))
    assert report["type"] == "RateLimited"
    assert read_failure(tmp_path)["retry_after"] == 12.0


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


# One text per row of contracts/failure-texts.json, as a real library words it.
KNOWN_TEXTS = [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "OutOfMemory"),
    ("RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.35 GiB total capacity)", "OutOfMemory"),
    ("RuntimeError: CUDA error: out of memory", "OutOfMemory"),
    ("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`", "OutOfMemory"),
    ("RuntimeError: [enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory", "OutOfMemory"),
    ("worker failed:\nMemoryError", "OutOfMemory"),
    ("HTTPError: 429 Client Error: Too Many Requests for url: https://huggingface.co/x", "RateLimited"),
    ("ERROR: HTTP error 429 while getting https://pypi.org/simple/torch/", "RateLimited"),
    ("ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task", "RayFailure"),
    ("RaySystemError: System error: Failed to unpickle", "RayFailure"),
    ("A worker died or was killed while executing a task by an unexpected system error. "
     "Worker exit type: SYSTEM_ERROR", "RayFailure"),
    ("RuntimeError: Failed to connect to GCS within 60 seconds", "RayFailure"),
    ("the raylet on node abc has died", "RayFailure"),
    ("OSError: [Errno 28] No space left on device", "StorageError"),
    ("RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 12588352 vs 12588240", "StorageError"),
    ("RuntimeError: [enforce fail at inline_container.cc:857] . PytorchStreamWriter failed writing file data/37: "
     "file write failed", "StorageError"),
    ("nemo_rl.utils.config.OverridesError: Failed to parse Hydra overrides: Could not override 'grpo.x'.",
     "InvalidConfig"),
    ("omegaconf.errors.MissingMandatoryValue: Missing mandatory value: policy.generation.vllm_cfg.tool_parser_plugin",
     "InvalidConfig"),
    ("Traceback (most recent call last):\n  File \"run_grpo_nemo_gym.py\", line 186, in main\n"
     "KeyError: 'checkpoint_dir'", "InvalidConfig"),
    ("ValueError: A non-null `grpo.max_val_samples` parameter is not supported.", "InvalidConfig"),
    ("wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])", "InvalidConfig"),
]


@pytest.mark.parametrize("text, expected", KNOWN_TEXTS)
def test_known_failure_texts_come_from_the_shared_table(text, expected):
    assert text_type(text) == expected
    assert classify(RuntimeError(text)) == expected


def test_shared_table_is_the_contract_file_and_every_row_is_covered():
    rows = contracts.load("failure-texts.json")["rows"]
    assert [t.id for t in FAILURE_TEXTS] == [r["id"] for r in rows]
    types = contract_validator("failure.schema.json").schema["properties"]["type"]["enum"]
    assert {r["type"] for r in rows} <= set(types)
    matched = {next(t.id for t in FAILURE_TEXTS if t.pattern.search(text)) for text, _ in KNOWN_TEXTS}
    assert matched == {r["id"] for r in rows}


def test_loose_substrings_are_no_longer_failure_texts():
    # The trainer's old list matched any "GCS", "raylet" or "SYSTEM_ERROR"; the shared table asks for
    # what Ray really says when it loses them.
    for text in ("GCS", "could not read GCS-style path", "raylet", "SYSTEM_ERROR", "step 429 of 500"):
        assert classify(RuntimeError(text)) == "Unknown", text


def test_first_matching_row_wins_within_one_text_and_types_keep_their_precedence():
    both = "ray.exceptions.ActorDiedError after OSError: [Errno 28] No space left on device"
    assert text_type(both) == "RayFailure"  # the Ray row comes before the storage row
    assert classify(RuntimeError(both)) == "RayFailure"
    # A typed cause in the chain still decides by precedence (storage before Ray).
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as full:
            raise RuntimeError("ActorDiedError: the checkpoint writer died") from full
    except RuntimeError as outer:
        assert classify(outer) == "StorageError"
    # A typed TrainerError beats every text.
    try:
        try:
            raise RuntimeError("CUDA out of memory")
        except RuntimeError as oom:
            raise InvalidConfigError("policy.model_name", "bad") from oom
    except InvalidConfigError as outer:
        assert classify(outer) == "InvalidConfig"


def test_typed_checks_that_are_not_texts():
    import yaml

    class Response:
        status_code = 429

    class HubError(Exception):
        response = Response()

    RayError = type("RayError", (Exception,), {"__module__": "ray.exceptions"})
    assert classify(OSError(errno.EFBIG, "x")) == "StorageError"
    assert classify(OSError(errno.EDQUOT, "x")) == "StorageError"
    assert classify(HubError("slow down")) == "RateLimited"
    assert classify(RayError("something")) == "RayFailure"
    assert classify(yaml.YAMLError("bad")) == "InvalidConfig"
    assert classify(type("OutOfMemoryError", (Exception,), {})("x")) == "OutOfMemory"


@pytest.mark.parametrize("exc, retry_after", [
    (MemoryError(), None),
    (RateLimitedError("429 Too Many Requests", 3), 3.0),
    (InvalidDataError("x.jsonl", 2, "bad row"), None),
    (RuntimeError("x" * 10_000), None),
])
def test_every_failure_report_matches_the_contract(tmp_path, exc, retry_after):
    from grpo_trainer import failures

    failures.PROGRESS["step"] = 5 if retry_after else None
    try:
        report = write_failure(tmp_path, exc)
    finally:
        failures.PROGRESS["step"] = None
    assert read_failure(tmp_path) == report  # read_failure validates against contracts/failure.schema.json
    assert report.get("retry_after") == retry_after
    assert len(report["message"]) <= 4000


def test_unreachable_ray_cluster_fails_fast_as_ray_failure(tiny_model, task_files, tmp_path):
    env = trainer_env()
    env["RAY_ADDRESS"] = f"127.0.0.1:{free_ports(1)[0]}"
    started = time.time()
    result = subprocess.run(trainer_command("train", "--config", str(CPU_CONFIG),
                                            *tiny_overrides(tiny_model, *task_files, tmp_path)),
                            env=env, capture_output=True, text=True, timeout=120, cwd=TRAINER_ROOT)
    assert result.returncode == 1
    assert time.time() - started < 60
    assert read_failure(tmp_path / "logs")["type"] == "RayFailure"


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
    failure = read_failure(run_dir / "logs")
    assert failure["type"] == "RayFailure"
    assert failure["step"] is not None and failure["step"] >= 2
    assert 1 in metrics(run_dir)
