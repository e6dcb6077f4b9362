"""Export a checkpoint (or any model directory) as a plain Hugging Face model.

The output directory is what ``AutoModelForCausalLM.from_pretrained`` and
``vllm serve`` take: ``model.safetensors`` + ``config.json`` +
``generation_config.json``, the tokenizer with our chat template
(``chat_template.jinja``: the compact tool list in the system turn and
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` calls, the
Hermes convention, so vLLM's ``--tool-call-parser hermes`` reads them), and
``grpo_export.json`` naming the source, its step and its metrics.

Sources: a checkpoint's ``step_N`` directory (``policy/weights`` +
``policy/tokenizer``), or an HF model directory (the prepared base model, an
earlier export). The chat template is installed afresh either way, so an
export always renders the current documented format. ``prefill_tool_call``
bakes the prefilled ``<tool_call>{"name": "`` opener into the template (what
training used with ``env.workplace_assistant.prefill_tool_call``); it is off
by default because a server's tool-call parser would not see the opener.

The export is written to ``<out>.tmp-<pid>`` and renamed when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .model.chat_format import install_chat_format
from .training import checkpoints as ckpt

MANIFEST = "grpo_export.json"


def source_dirs(model: str | Path) -> tuple[Path, Path]:
    """(weights dir, tokenizer dir) of a checkpoint step dir or an HF model dir."""
    root = Path(model)
    if not root.is_dir():
        raise ModelLoadError(f"model directory not found: {root}")
    weights, tokenizer = ckpt.policy_dirs(root)
    if not (weights / "config.json").is_file():
        raise ModelLoadError(f"{root} is neither a checkpoint step dir (policy/weights/config.json) "
                             "nor a Hugging Face model dir (config.json)")
    return weights, tokenizer


def _checkpoint_info(root: Path) -> dict[str, Any]:
    data = ckpt.read_training_info(root) or {}
    return {k: data[k] for k in ("total_steps", "current_step", *ckpt.VAL_METRICS, "val_reward") if k in data}


def export_model(model: str | Path, out: str | Path, *, prefill_tool_call: bool = False,
                 dtype: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = Path(model)
    weights_dir, tokenizer_dir = source_dirs(root)
    out = Path(out)
    if out.exists():
        if not overwrite:
            raise ModelLoadError(f"{out} exists; remove it or pass --overwrite")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype or "")
    if dtype and torch_dtype is None:
        raise ModelLoadError(f"unknown dtype {dtype!r} (float32, bfloat16 or float16)")
    started = time.time()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        policy = AutoModelForCausalLM.from_pretrained(str(weights_dir), dtype=torch_dtype or "auto")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a model from {root}: {exc}") from exc
    install_chat_format(tokenizer, prefill_tool_call)
    # Generation stops at ChatML's end of turn, which our tokenizer uses as eos.
    policy.generation_config.eos_token_id = tokenizer.eos_token_id
    policy.generation_config.pad_token_id = tokenizer.pad_token_id
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        policy.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        manifest = {
            "source": str(root.resolve()),
            "checkpoint": _checkpoint_info(root),
            "dtype": str(policy.dtype).replace("torch.", ""),
            "num_parameters": sum(p.numel() for p in policy.parameters()),
            "chat_template": "grpo_trainer.model.chat_format (Hermes <tool_call> JSON calls)",
            "prefill_tool_call": prefill_tool_call,
            "serve_with_vllm": f"vllm serve {out} --enable-auto-tool-choice --tool-call-parser hermes",
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - started, 2),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), **manifest}
