"""Benchmark: the same GRPO config on 1 and N Ray Train workers (strong scaling).

Starts a private Ray head on loopback (all visible GPUs, or CPUs only), then
runs `python -m grpo_trainer train` through it once per worker count with
`cluster.num_workers=K`: warm-up steps, then timed steps, no validation and
no checkpoints. Every run trains the same global batch (grpo.num_prompts_per_step x
grpo.num_generations_per_prompt rollouts per step), split over K workers.
Writes raw JSON (after every run, so a cut-off run keeps what finished):

* per worker count: step time mean/median (timed steps), trained tokens/s
  (prompt + completion tokens through forward/backward, all workers, per
  second of step time) in total and per worker, rollouts/s, generated
  tokens/s, wall time of the whole launch, the world size the trainer reported;
* scaling, per K: efficiency = (tokens/s with K workers / K) / tokens/s with 1
  worker, and the step-time speedup t1 / tK.

GPU (preset `gpu`, the default when CUDA sees GPUs): configs/builtin-gpu.yaml
cut to a ~2-minute benchmark (8 tasks x 8 rollouts, 64 new tokens, 2 tool calls).
Preset `gpu-64x8`: the same with 64 tasks x 8 rollouts (512 per step), so each
GPU's generate calls are large batches and the step is not dominated by the
per-token latency of decoding (see docs/benchmarks.md, "Scaling").
CPU (preset `cpu`): configs/builtin-cpu.yaml with 2 tasks x 4 rollouts, one CPU per worker.
(Both are pipeline configs; the trainer reads their `trainer:` section.)

    python trainer/bench/bench_scaling.py --model DIR --data-dir DIR --out scaling.json \\
        [--workers 1,2] [--warmup 1] [--steps 3] [--device auto|gpu|cpu] [--preset gpu|gpu-64x8|cpu] \\
        [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TRAINER_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = TRAINER_ROOT.parent / "configs"
sys.path.insert(0, str(TRAINER_ROOT))

from grpo_trainer.config.loader import load_config  # noqa: E402
from grpo_trainer.training.local_ray import start_local_head  # noqa: E402

GPU_PRESET = [
    "grpo.num_prompts_per_step=8", "grpo.num_generations_per_prompt=8", "policy.train_micro_batch_size=16",
    "policy.generation.max_new_tokens=64", "env.workplace_assistant.max_tool_steps=2",
]
CPU_PRESET = [
    "grpo.num_prompts_per_step=2", "grpo.num_generations_per_prompt=4", "policy.train_micro_batch_size=4",
    "policy.generation.max_new_tokens=32",
]
PRESETS: dict[str, list[str]] = {
    "gpu": GPU_PRESET,
    "gpu-64x8": [x if not x.startswith("grpo.num_prompts_per_step=") else "grpo.num_prompts_per_step=64"
                 for x in GPU_PRESET],
    "cpu": CPU_PRESET,
}


def _gpu_info() -> tuple[int, list[str]]:
    try:
        import torch
    except ImportError:
        return 0, []
    if not torch.cuda.is_available():
        return 0, []
    return torch.cuda.device_count(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _summary(records: list[dict[str, Any]], warmup: int, workers: int, rollouts_per_step: int) -> dict[str, Any]:
    train = sorted((r for r in records if r["kind"] == "train"), key=lambda r: r["step"])
    timed = [r for r in train if r["step"] > warmup]
    out: dict[str, Any] = {"steps_logged": [r["step"] for r in train], "timed_steps": [r["step"] for r in timed]}
    if not timed:
        return out
    times = [float(r["timing/train/total_step_time"]) for r in timed]
    seconds = sum(times)

    def total(key: str) -> float:
        return float(sum(r.get(key) or 0.0 for r in timed))

    def per_rank_mean(key: str) -> list[float] | None:
        rows = [r[key] for r in timed if isinstance(r.get(key), list)]
        if not rows or len({len(row) for row in rows}) != 1:
            return None
        return [round(statistics.mean(float(row[i]) for row in rows), 3) for i in range(len(rows[0]))]

    trained = total("train/trained_tokens")
    generated = total("train/generated_tokens")
    tokens_per_s = trained / seconds
    out.update({
        "step_time_s": [round(t, 3) for t in times],
        "step_time_s_mean": round(statistics.mean(times), 3),
        "step_time_s_median": round(statistics.median(times), 3),
        "generation_time_s_mean_rank0": round(statistics.mean(float(r.get("timing/train/generation") or 0.0)
                                                              for r in timed), 3),
        "generate_time_s_mean_rank0": round(statistics.mean(float(r.get("timing/train/generate") or 0.0)
                                                            for r in timed), 3),
        "generation_time_s_mean_by_rank": per_rank_mean("timing/train/generation_by_rank"),
        "generate_time_s_mean_by_rank": per_rank_mean("timing/train/generate_by_rank"),
        "generate_calls_mean_by_rank": per_rank_mean("train/generate_calls_by_rank"),
        "generate_rollouts_mean_by_rank": per_rank_mean("train/generate_rollouts_by_rank"),
        "generation_time_s_by_step_rank0": [round(float(r.get("timing/train/generation") or 0.0), 3) for r in timed],
        "generate_time_s_by_step_by_rank": [r.get("timing/train/generate_by_rank") for r in timed],
        "generate_calls_by_step_by_rank": [r.get("train/generate_calls_by_rank") for r in timed],
        "trained_tokens_per_step_mean": round(trained / len(timed), 1),
        "generated_tokens_per_step_mean": round(generated / len(timed), 1),
        "tokens_per_s_total": round(tokens_per_s, 2),
        "tokens_per_s_per_worker": round(tokens_per_s / workers, 2),
        "generated_tokens_per_s_total": round(generated / seconds, 2),
        "rollouts_per_s": round(rollouts_per_step * len(timed) / seconds, 3),
        "train_reward": [r.get("train/reward") for r in timed],
        "task_ids_by_rank_first_timed_step": timed[0].get("train/task_ids_by_rank"),
    })
    return out


def _world_size(output: str) -> int | None:
    for line in output.splitlines():
        marker = "world size "
        if marker in line:
            try:
                return int(line.split(marker, 1)[1].split()[0])
            except (IndexError, ValueError):
                continue
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="HF model dir made by `prepare-model` (or --tiny-random)")
    parser.add_argument("--data-dir", required=True, help="dir with train.jsonl/validation.jsonl (`prepare-data`)")
    parser.add_argument("--out", required=True, help="where to write the JSON result")
    parser.add_argument("--workers", default=None, help="comma-separated worker counts (default: 1,N with N = "
                        "the number of GPUs, or 2 on CPU)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps at the start of each run")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--device", choices=("auto", "gpu", "cpu"), default="auto")
    parser.add_argument("--config", default=None,
                        help="config (default: configs/builtin-gpu.yaml or configs/builtin-cpu.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra trainer override, after the preset (repeatable)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="benchmark shape (default: gpu on GPUs, cpu on CPUs)")
    parser.add_argument("--no-preset", action="store_true", help="run the config as it is (only --set applies)")
    parser.add_argument("--work-dir", default=None, help="run directories (default: a temp dir)")
    parser.add_argument("--log-dir", default=None, help="also copy each run's trainer output here")
    parser.add_argument("--run-timeout", type=float, default=300, help="seconds per training launch")
    ns = parser.parse_args()

    # A kill from outside (timeout) still stops the Ray head in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    num_gpus, gpu_names = _gpu_info()
    use_gpu = ns.device == "gpu" or (ns.device == "auto" and num_gpus > 0)
    if use_gpu and num_gpus == 0:
        parser.error("--device gpu but CUDA sees no GPU")
    if ns.workers:
        counts = [int(x) for x in ns.workers.split(",") if x.strip()]
    else:
        counts = [1, num_gpus if use_gpu else 2] if (num_gpus if use_gpu else 2) > 1 else [1]
    if use_gpu and max(counts) > num_gpus:
        parser.error(f"--workers asks for {max(counts)} workers but there are {num_gpus} GPUs")
    if use_gpu:  # no NVLink multicast: data-parallel all-reduces of a small model don't need it
        for key, value in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"),
                           ("NVSHMEM_DISABLE_NVLS", "1")):
            os.environ.setdefault(key, value)
    config = ns.config or str(CONFIGS / ("builtin-gpu.yaml" if use_gpu else "builtin-cpu.yaml"))
    preset_name = None if ns.no_preset else (ns.preset or ("gpu" if use_gpu else "cpu"))
    preset = PRESETS[preset_name] if preset_name else []
    data_dir = Path(ns.data_dir).resolve()
    steps = ns.warmup + ns.steps
    work = Path(ns.work_dir or tempfile.mkdtemp(prefix="bench-scaling-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log_dir = Path(ns.log_dir).resolve() if ns.log_dir else None
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    common = [
        f"policy.model_name={Path(ns.model).resolve()}",
        f"data.train.data_path={data_dir / 'train.jsonl'}",
        f"data.validation.data_path={data_dir / 'validation.jsonl'}",
        f"grpo.max_num_steps={steps}", "grpo.max_num_epochs=1000", "grpo.stop_after_step=null",
        "grpo.val_at_start=false", "grpo.val_at_end=false", "grpo.val_period=0",
        "checkpointing.enabled=false", "logger.tensorboard_enabled=false",
        *preset, *ns.overrides,
    ]
    # The trainer's own loader: it reads pipeline configs and applies the overrides as training will.
    shape, _ = load_config(config, common, check_paths=False)
    rollouts_per_step = shape.grpo.num_prompts_per_step * shape.grpo.num_generations_per_prompt

    import torch

    result: dict[str, Any] = {
        "benchmark": "grpo-scaling",
        "device": "gpu" if use_gpu else "cpu",
        "gpus": gpu_names,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "config": config,
        "preset": preset_name,
        "overrides": common,
        "rollouts_per_step": rollouts_per_step,
        "warmup_steps": ns.warmup,
        "timed_steps": ns.steps,
        "worker_counts": counts,
        "runs": {},
        "scaling": {},
        "definitions": {
            "tokens_per_s_total": "trained tokens (prompt + completion through forward/backward, all workers) "
                                  "of the timed steps / their summed step time",
            "tokens_per_s_per_worker": "tokens_per_s_total / workers",
            "efficiency": "(tokens_per_s_total with K workers / K) / tokens_per_s_total with 1 worker",
            "step_time_speedup": "step_time_s_mean with 1 worker / with K workers",
        },
    }
    out_path = Path(ns.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        result["total_wall_s"] = round(time.time() - started, 1)
        result["load_average_now"] = [round(x, 2) for x in os.getloadavg()]
        out_path.write_text(json.dumps(result, indent=2))

    cpus = os.cpu_count() or 1
    t0 = time.time()
    head = start_local_head(num_cpus=cpus, num_gpus=num_gpus if use_gpu else 0)
    result["ray_head_start_s"] = round(time.time() - t0, 1)
    result["ray_address"] = head.address
    print(f"Ray head at {head.address} ({cpus} CPUs, {num_gpus if use_gpu else 0} GPUs) in "
          f"{result['ray_head_start_s']}s", flush=True)
    try:
        for k in counts:
            run_dir = work / f"workers_{k}"
            args = [sys.executable, "-m", "grpo_trainer", "train", "--config", config, *common,
                    f"checkpointing.checkpoint_dir={run_dir / 'checkpoints'}", f"logger.log_dir={run_dir / 'logs'}",
                    f"cluster.num_workers={k}", *([f"cluster.gpus_per_node={k}"] if use_gpu else [])]
            env = {**os.environ, **head.client_env(), "HF_HUB_OFFLINE": "1",
                   "PYTHONPATH": os.pathsep.join(p for p in (str(TRAINER_ROOT), os.environ.get("PYTHONPATH")) if p)}
            print(f"--- {k} worker(s): {steps} steps ({ns.warmup} warm-up)", flush=True)
            t = time.time()
            try:
                proc = subprocess.run(args, env=env, cwd=TRAINER_ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, timeout=ns.run_timeout)
                output, code = proc.stdout, proc.returncode
            except subprocess.TimeoutExpired as exc:
                output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
                code = None
            wall = time.time() - t
            if log_dir:
                (log_dir / f"workers_{k}.log").write_text(output)
            metrics_file = run_dir / "logs" / "metrics.jsonl"
            records = ([json.loads(line) for line in metrics_file.read_text().splitlines()]
                       if metrics_file.is_file() else [])
            run = {"workers": k, "exit_code": code, "wall_s": round(wall, 1), "world_size": _world_size(output),
                   **_summary(records, ns.warmup, k, rollouts_per_step)}
            if code != 0:
                run["output_tail"] = output[-3000:]
            result["runs"][str(k)] = run
            print(json.dumps({key: run.get(key) for key in ("workers", "exit_code", "world_size", "wall_s",
                                                            "step_time_s_mean", "tokens_per_s_total")}), flush=True)
            base = result["runs"].get(str(counts[0]))
            if base and base.get("tokens_per_s_total") and run.get("tokens_per_s_total") and counts[0] == 1:
                result["scaling"][str(k)] = {
                    "efficiency": round(run["tokens_per_s_total"] / k / base["tokens_per_s_total"], 3),
                    "step_time_speedup": round(base["step_time_s_mean"] / run["step_time_s_mean"], 3),
                }
            write()
    finally:
        head.stop()
        write()
    print(json.dumps({"runs": {k: {x: v.get(x) for x in ("exit_code", "step_time_s_mean", "tokens_per_s_total",
                                                           "tokens_per_s_per_worker")}
                               for k, v in result["runs"].items()}, "scaling": result["scaling"],
                      "total_wall_s": result["total_wall_s"]}, indent=2), flush=True)
    ok = all(r.get("exit_code") == 0 and r.get("timed_steps") for r in result["runs"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
