"""Run training on an existing Ray cluster through Ray Train.

The pipeline starts a Ray head and hands us `RAY_ADDRESS`; we place one
training worker per GPU (or one on a CPU-only cluster; `cluster.num_workers`
overrides) with a TorchTrainer. Ray Train creates the torch process group
(NCCL on GPUs, gloo on CPUs) and sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR
and ACCELERATE_TORCH_DEVICE in each worker, which accelerate (inside TRL's
trainer) picks up, so the model is wrapped in DDP and every worker generates
and trains on its own slice of each step. Rank 0 writes checkpoints and
metrics; the others only train (and add their RNG state to checkpoints).

A dead cluster must fail fast as `RayFailure`: we probe the GCS port before
`ray.init` (which would otherwise retry for a minute) and shorten Ray's own
reconnect window, so a head that dies mid-run ends the driver quickly.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Any

from ..config.loader import _build
from ..config.schema import TrainerConfig
from ..errors import RayFailureError, TrainerError
from ..failures import classify
from .ray_logs import route_ray_logs

GCS_PROBE_TIMEOUT_S = 5.0


def probe_gcs(address: str) -> None:
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=GCS_PROBE_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise RayFailureError(f"Ray cluster at RAY_ADDRESS={address} is unreachable: {exc}") from exc


def _worker_loop(config: dict[str, Any]) -> None:
    import ray.train
    import torch

    from ..library_noise import quiet_library_noise
    from .grpo import train

    quiet_library_noise()
    cfg = _build(TrainerConfig, config["cfg"], "")
    ctx = ray.train.get_context()
    if config.get("use_gpu") and torch.cuda.device_count() < ctx.get_local_world_size():
        # `ray start --num-gpus=N` advertises N GPUs whether or not they exist.
        raise RayFailureError(f"the Ray node runs {ctx.get_local_world_size()} GPU workers but CUDA sees "
                              f"{torch.cuda.device_count()} GPU(s) in the worker (CUDA_VISIBLE_DEVICES="
                              f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}); start the Ray head with --num-gpus "
                              "(the pipeline's ray.num_gpus) matching the real GPUs")
    torch.set_num_threads(max(1, int(config["cpus_per_worker"])))
    train(cfg, rank=ctx.get_world_rank(), world_size=ctx.get_world_size())


def _worker_exception(exc: BaseException) -> BaseException | None:
    failures = getattr(exc, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        return next(iter(failures.values()))
    return None


def train_on_ray(cfg: TrainerConfig) -> dict[str, Any]:
    address = os.environ["RAY_ADDRESS"]
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", "15")
    probe_gcs(address)
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    try:
        # Workers import grpo_trainer from the same checkout (a shared file
        # system on multi-node clusters, as NeMo RL's ray.sub also assumes).
        package_root = str(Path(__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        # Ray Train's print patch would log every line of ours twice (logger + stdout).
        env_vars = {"PYTHONPATH": pythonpath,
                    "RAY_TRAIN_ENABLE_PRINT_PATCH": os.environ.get("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")}
        for key in ("HF_HUB_OFFLINE", "HF_HOME", "HF_TOKEN", "TRANSFORMERS_OFFLINE"):
            if key in os.environ:
                env_vars[key] = os.environ[key]
        # W&B (rank 0 logs to it when logger.wandb_enabled; the pipeline passes WANDB_API_KEY only then).
        env_vars.update({k: v for k, v in os.environ.items() if k.startswith("WANDB_")})
        # Ray Train's own helper actors call ray.init() without an address; with several Ray
        # clusters on one host (one per run) they would refuse to guess which one is theirs.
        env_vars["RAY_ADDRESS"] = address
        # NCCL and symmetric-memory settings (e.g. NCCL_NVLS_ENABLE=0) must reach every worker.
        env_vars.update({k: v for k, v in os.environ.items()
                         if k.startswith(("NCCL_", "NVSHMEM_", "TORCH_SYMM_MEM_", "TORCH_NCCL_"))})
        ray.init(address=address, log_to_driver=True, logging_level="WARNING",
                 runtime_env={"env_vars": env_vars})
    except Exception as exc:  # noqa: BLE001
        raise RayFailureError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    close_ray_log = route_ray_logs(cfg.logger.log_dir)
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        workers = cfg.cluster.num_workers or (gpus if gpus else 1)
        if gpus and workers > gpus:
            raise RayFailureError(f"cluster.num_workers={workers} but the Ray cluster has only {gpus} GPUs")
        if workers > cpus:  # Ray would wait forever for the missing CPUs
            raise RayFailureError(f"cluster.num_workers={workers} but the Ray cluster has only {cpus} CPUs "
                                  "(each worker needs at least one)")
        expected = cfg.cluster.gpus_per_node * cfg.cluster.num_nodes
        if gpus and expected and expected != workers:
            print(f"warning: cluster.gpus_per_node x cluster.num_nodes = {expected}, but training uses {workers} "
                  f"worker(s) on the {gpus} GPU(s) of the Ray cluster", flush=True)
        cpus_per_worker = max(1, cpus // workers)
        storage = Path(cfg.logger.log_dir).resolve() / "ray_train"
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={"cfg": dataclasses.asdict(cfg), "cpus_per_worker": cpus_per_worker,
                               "use_gpu": gpus > 0},
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus > 0,
                                         resources_per_worker={"CPU": cpus_per_worker}),
            run_config=RunConfig(name="grpo", storage_path=str(storage), failure_config=FailureConfig(max_failures=0)),
        )
        print(f"Ray Train: {workers} worker(s), {cpus_per_worker} CPU(s) each, {gpus} GPU(s) in cluster, "
              f"process group backend {'nccl' if gpus else 'gloo'}", flush=True)
        try:
            trainer.fit()
        except Exception as exc:  # noqa: BLE001
            inner = _worker_exception(exc)
            if inner is not None and classify(inner) != "Unknown":
                if isinstance(inner, TrainerError):
                    raise inner from exc
                raise
            if classify(exc) in ("OutOfMemory", "InvalidConfig", "InvalidData", "ModelLoad", "RateLimited"):
                raise
            raise RayFailureError(f"Ray training failed: {type(exc).__name__}: {exc}") from exc
    finally:
        ray.shutdown()
        if close_ray_log is not None:
            close_ray_log()
    from . import checkpoints as ckpt

    latest = ckpt.latest_complete(cfg.checkpointing.checkpoint_dir)
    return {"global_step": latest.step if latest else 0, "workers": workers}
