"""Supervised warm start before GRPO: TRL's `SFTTrainer` on tool-calling traces.

The base model almost never completes a workplace task, so GRPO starts with
no learning signal. A short supervised pass over successful traces (one JSON
object per line: task_id, category, tools, messages, tool_calls) teaches the
call format and the common tools first.

What the model is trained on is exactly what a rollout sees and generates:
* the traces render through our one chat template (model/chat_format.py) with
  the config's `env.workplace_assistant.prefill_tool_call`; the training
  variant of the template only adds `{% generation %}` markers, so TRL's
  `assistant_only_loss` puts the loss on each assistant turn's text, calls and
  closing `<|im_end|>`, and on nothing else: not the system/user/tool text, not
  the newline the template adds after `<|im_end|>`, and (with prefill) not the
  prefilled `<tool_call>{"name": "` opener of the first turn, which the model
  never generates. A trace whose prefilled turn does not start with a call
  cannot happen in a prefilled rollout and is dropped (counted);
* a trace longer than `warm_start.max_length` tokens is dropped and counted,
  never truncated (a cut trace teaches a turn without its end);
* tool-call arguments are re-serialised as the template's `tojson` writes them.

OUT_DIR layout:
    model/             the warmed model (save_pretrained, plain template): a model dir like prepare-model's
    checkpoints/       transformers' checkpoint-N folders; a killed run resumes from the newest complete one
    metrics.jsonl      {"kind": "warm_start", "step", "total_steps", "loss", ...} per logging step
    warm_start.json    {fingerprint, base_model, traces, examples, dropped_too_long, steps, seconds, final_loss,
                        settings, ...}; written last: with a matching fingerprint and a complete model/ the
                        command does nothing (idempotent)
    failure.json       after a failure (failures.write_failure), with a non-zero exit
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .. import failures
from ..config.schema import TrainerConfig
from ..errors import InvalidConfigError, InvalidDataError
from ..model.chat_format import install_chat_format, training_chat_template
from ..model.prepare import MANIFEST
from ..model.prepare import fingerprint as weights_fingerprint
from . import checkpoints as ckpt
from .identity import model_fingerprint
from .metrics import peak_memory_mb
from .sft_examples import load_traces, prepare_examples

RESULT_FILE = "warm_start.json"
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
# In checkpoints/: which warm start (fingerprint) the checkpoints there belong to.
RUN_FILE = "warm_start_run.json"
METRICS_KIND = "warm_start"
CPUINFO = Path("/proc/cpuinfo")  # Linux; elsewhere unreadable, so fp32
# Fixed training choices, recorded in the settings (and so in the fingerprint).
SCHEDULE = {"lr_scheduler": "cosine", "warmup_ratio": 0.05, "weight_decay": 0.0, "max_grad_norm": 1.0,
            "sampler": "group_by_length"}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cpu_computes_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX). Where it does, bf16 autocast
    halves a CPU warm start (SmolLM2-135M, 8 x 640 tokens: 45 s a step in fp32, 24 s with autocast,
    docs/trainer.md); where it does not, bf16 is emulated and slower than fp32."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolved_precision(cfg: TrainerConfig) -> str:
    """`policy.precision` for the warm start: weights stay fp32 either way; bfloat16 means bf16 autocast
    (mixed precision). auto: bfloat16 on CUDA and on a CPU that computes bf16 natively, else float32."""
    import torch

    precision = cfg.policy.precision
    if precision == "auto":
        precision = "bfloat16" if torch.cuda.is_available() or cpu_computes_bf16() else "float32"
    return precision


def settings_of(cfg: TrainerConfig) -> dict[str, Any]:
    """Everything that changes the warmed model besides the base model and the traces."""
    ws = dataclasses.asdict(cfg.warm_start)
    ws.pop("enabled")  # whether the pipeline runs the warm start, not how
    prefill = cfg.env.workplace_assistant.prefill_tool_call
    return {**ws, "prefill_tool_call": prefill, "seed": cfg.grpo.seed, "precision": resolved_precision(cfg),
            "template_sha256": hashlib.sha256(training_chat_template(prefill).encode()).hexdigest()[:16],
            **SCHEDULE}


def run_fingerprint(base_fingerprint: str, traces_sha256: str, settings: dict[str, Any]) -> str:
    blob = json.dumps({"base_model": base_fingerprint, "traces": traces_sha256, "settings": settings},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- output directory ---------------------------------------------------------------------------------------


def model_complete(model_dir: Path, fingerprint: str) -> bool:
    """`model/` holds a whole model saved by the warm start with this fingerprint."""
    manifest = model_dir / MANIFEST
    if not manifest.is_file() or not (model_dir / "config.json").is_file():
        return False
    if not any(model_dir.glob("*.safetensors")) or not (model_dir / "tokenizer_config.json").is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("warm_start_fingerprint") == fingerprint
    except json.JSONDecodeError:
        return False


def reusable(out_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """The earlier result when it was made from the same inputs and its model is complete."""
    result_file = out_dir / RESULT_FILE
    if not result_file.is_file():
        return None
    try:
        result = json.loads(result_file.read_text())
    except json.JSONDecodeError:
        return None
    if result.get("fingerprint") != fingerprint or not model_complete(out_dir / MODEL_DIR, fingerprint):
        return None
    return result


def _checkpoint_step(path: Path) -> int | None:
    """The step of a complete `checkpoint-N` (transformers writes trainer_state.json last), else None."""
    name = path.name
    if not name.startswith("checkpoint-") or not name.removeprefix("checkpoint-").isdigit():
        return None
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    step = int(name.removeprefix("checkpoint-"))
    return step if state.get("global_step") == step else None


def resume_checkpoint(checkpoint_dir: Path, fingerprint: str) -> Path | None:
    """The newest complete checkpoint of this warm start. Checkpoints of other inputs, and
    incomplete ones (killed mid-save), are removed, so a changed input trains from the start."""
    if not checkpoint_dir.is_dir():
        return None
    run_file = checkpoint_dir / RUN_FILE
    try:
        owner = json.loads(run_file.read_text()).get("fingerprint") if run_file.is_file() else None
    except json.JSONDecodeError:
        owner = None
    if owner != fingerprint:
        shutil.rmtree(checkpoint_dir)
        return None
    complete = []
    for child in checkpoint_dir.iterdir():
        if child.is_dir() and child.name.startswith("checkpoint-"):
            step = _checkpoint_step(child)
            if step is None:
                shutil.rmtree(child)
            else:
                complete.append((step, child))
    return max(complete)[1] if complete else None


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _append_line(path: Path, record: dict[str, Any]) -> None:
    """One write per line on an append-only file: a reader never sees half a line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


# --- training -----------------------------------------------------------------------------------------------


def build_trainer(cfg: TrainerConfig, rows: list[dict[str, Any]], model_dir: str | Path, out_dir: Path,
                  callbacks: list[Any] | None = None) -> Any:
    """TRL's SFTTrainer on `rows`, with assistant-only loss through the training template."""
    import datasets
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .grpo import load_policy

    ws = cfg.warm_start
    precision = resolved_precision(cfg)
    cuda = torch.cuda.is_available()
    datasets.disable_progress_bars()  # TRL's map/filter bars would bury the one line per step
    # fp32 master weights, as the optimizer needs the small updates; "bfloat16" is autocast (mixed precision).
    model, tokenizer = load_policy(str(model_dir), torch.float32, ws.trainable_layers,
                                   cfg.env.workplace_assistant.prefill_tool_call)
    install_chat_format(tokenizer, cfg.env.workplace_assistant.prefill_tool_call, training=True)
    args = SFTConfig(
        output_dir=str(out_dir / CHECKPOINTS_DIR),
        num_train_epochs=ws.epochs,
        per_device_train_batch_size=ws.batch_size,
        gradient_accumulation_steps=ws.gradient_accumulation_steps,
        learning_rate=ws.lr,
        lr_scheduler_type=SCHEDULE["lr_scheduler"],
        warmup_steps=SCHEDULE["warmup_ratio"],
        weight_decay=SCHEDULE["weight_decay"],
        max_grad_norm=SCHEDULE["max_grad_norm"],
        assistant_only_loss=True,
        # Every row already fits (longer traces were dropped), so this never truncates.
        max_length=ws.max_length,
        packing=False,
        activation_checkpointing=False,
        bf16=precision == "bfloat16",
        fp16=False,
        use_cpu=not cuda,
        seed=cfg.grpo.seed,
        data_seed=cfg.grpo.seed,
        # Batches of similar lengths (still random): traces run from ~300 to max_length tokens, and padding
        # a batch to its longest trace would spend a third of a CPU step on pad tokens.
        train_sampling_strategy=SCHEDULE["sampler"],
        logging_steps=1,
        save_strategy="steps",
        save_steps=ws.save_steps,
        save_total_limit=1,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      callbacks=callbacks or [])


def _peak_memory() -> dict[str, float]:
    import torch

    peak = peak_memory_mb()
    if torch.cuda.is_available():
        peak["memory/cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _progress_callback(out_dir: Path, started: float) -> Any:
    from transformers import TrainerCallback

    metrics_path = out_dir / METRICS_FILE

    class WarmStartProgress(TrainerCallback):
        def __init__(self) -> None:
            self.step_started = time.time()
            self.last_tokens = 0.0
            self.running = False

        def on_step_begin(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            # Not on_train_begin: transformers loads a resumed state after that event.
            if not self.running:
                self.running = True
                self.step_started = time.time()
                print(f"[warm-start] training running from step {st.global_step} of {st.max_steps}", flush=True)

        def on_step_end(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            failures.PROGRESS["step"] = st.global_step

        def on_save(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            print(f"[warm-start] saved checkpoint-{st.global_step}", flush=True)

        def on_log(self, args: Any, st: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            if not logs or "loss" not in logs:
                return
            now = time.time()
            elapsed, self.step_started = now - self.step_started, now
            tokens = float(logs.get("num_tokens") or 0.0)
            # num_tokens is cumulative and starts from 0 again in a resumed process.
            new_tokens = tokens - self.last_tokens if tokens >= self.last_tokens else tokens
            self.last_tokens = tokens
            record: dict[str, Any] = {
                "kind": METRICS_KIND, "step": st.global_step, "total_steps": st.max_steps, "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                "mean_token_accuracy": logs.get("mean_token_accuracy"), "epoch": logs.get("epoch"),
                "step_seconds": elapsed, "tokens": new_tokens,
                "tokens_per_sec": new_tokens / elapsed if elapsed > 0 else None,
                "elapsed_seconds": now - started, **_peak_memory(), "time": now,
            }
            _append_line(metrics_path, {k: v for k, v in record.items() if v is not None})
            tps = record["tokens_per_sec"]
            print(f"warm-start step {st.global_step}/{st.max_steps} | loss {logs['loss']:.4f} | "
                  f"lr {logs.get('learning_rate', 0.0):.2e} | step_s {elapsed:.1f} | "
                  f"tok/s {tps if tps is not None else 0.0:.0f}", flush=True)

    return WarmStartProgress()


def _save_model(trainer: Any, cfg: TrainerConfig, out_dir: Path, manifest: dict[str, Any]) -> Path:
    """The trained model with the plain template, written beside model/ and renamed into place."""
    final = out_dir / MODEL_DIR
    tmp = out_dir / f"{MODEL_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.save_pretrained(str(tmp))
    tokenizer = install_chat_format(trainer.processing_class, cfg.env.workplace_assistant.prefill_tool_call)
    tokenizer.save_pretrained(str(tmp))
    ckpt.write_json(tmp / MANIFEST, {**manifest, "fingerprint": weights_fingerprint(tmp), "created": time.time()})
    ckpt._fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def _final_loss(log_history: list[dict[str, Any]]) -> float | None:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return float(losses[-1]) if losses else None


def warm_start(cfg: TrainerConfig, *, traces: str | Path, model_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Train (or reuse) OUT_DIR/model; returns warm_start.json's content plus `reused`."""
    started = time.time()
    out = Path(out_dir)
    traces_path = Path(traces)
    weights_dir, _ = ckpt.policy_dirs(model_dir)
    if not (weights_dir / "config.json").is_file():
        raise InvalidConfigError("--model", f"model directory not found or has no config.json: {model_dir}")
    if not traces_path.is_file():
        raise InvalidDataError(str(traces_path), None, "traces file not found")
    settings = settings_of(cfg)
    base_fp = model_fingerprint(weights_dir)
    traces_sha = _sha256_file(traces_path)
    fp = run_fingerprint(base_fp, traces_sha, settings)
    earlier = reusable(out, fp)
    if earlier is not None:
        print(f"[warm-start] reusing {out / MODEL_DIR}: same base model, traces and settings "
              f"(fingerprint {fp})", flush=True)
        return {**earlier, "reused": True}

    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / RESULT_FILE, out / "failure.json"):
        stale.unlink(missing_ok=True)
    checkpoint_dir = out / CHECKPOINTS_DIR
    resume = resume_checkpoint(checkpoint_dir, fp)
    if resume is None:
        (out / METRICS_FILE).unlink(missing_ok=True)  # progress of other inputs
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    ckpt.write_json(checkpoint_dir / RUN_FILE, {"fingerprint": fp, "settings": settings})

    from transformers import AutoTokenizer, PrinterCallback

    tokenizer = install_chat_format(AutoTokenizer.from_pretrained(str(ckpt.policy_dirs(model_dir)[1])),
                                    cfg.env.workplace_assistant.prefill_tool_call, training=True)
    rows, stats = prepare_examples(load_traces(traces_path), tokenizer, cfg)
    if not rows:
        raise InvalidDataError(str(traces_path), None,
                               f"no usable traces: {stats['dropped_too_long']} longer than warm_start.max_length="
                               f"{cfg.warm_start.max_length} tokens, unusable: {stats['dropped_unusable']}")
    print(f"[warm-start] {stats['examples']} examples ({stats['tokens']} tokens, longest {stats['max_tokens']}) "
          f"from {stats['traces_read']} traces; dropped {stats['dropped_too_long']} longer than "
          f"{cfg.warm_start.max_length} tokens, unusable {stats['dropped_unusable'] or 0}", flush=True)

    trainer = build_trainer(cfg, rows, model_dir, out, [_progress_callback(out, started)])
    trainer.remove_callback(PrinterCallback)
    resumed_from = _checkpoint_step(resume) if resume is not None else None
    if resume is not None:
        print(f"[warm-start] resuming from {resume} (step {resumed_from})", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    manifest = {"source": "warm-start", "base_model": str(model_dir), "base_fingerprint": base_fp,
                "warm_start_fingerprint": fp}
    model_path = _save_model(trainer, cfg, out, manifest)
    result = {
        "fingerprint": fp,
        "base_model": str(model_dir),
        "base_model_fingerprint": base_fp,
        "traces": str(traces_path),
        "traces_sha256": traces_sha,
        "examples": stats["examples"],
        "traces_read": stats["traces_read"],
        "dropped_too_long": stats["dropped_too_long"],
        "dropped_unusable": stats["dropped_unusable"],
        "tokens": stats["tokens"],
        "steps": trainer.state.global_step,
        "resumed_from_step": resumed_from,
        "seconds": round(time.time() - started, 2),
        "final_loss": _final_loss(trainer.state.log_history),
        "settings": settings,
        "model_dir": str(model_path),
        **_peak_memory(),
    }
    _write_json_atomic(out / RESULT_FILE, result)
    # The model is final: the optimizer state (twice the model's size) is no use any more.
    for child in checkpoint_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    print(f"[warm-start] done: {result['steps']} steps, final loss {result['final_loss']}, "
          f"model in {model_path}", flush=True)
    return {**result, "reused": False}
