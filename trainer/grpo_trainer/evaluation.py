"""Offline evaluation of a model or checkpoint on a NeMo Gym JSONL task set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .config.loader import load_config
from .rollout.episodes import run_episodes, summarise
from .rollout.sampling import Sampling
from .training.compiled_generation import wanted as compiled_generation_wanted
from .training.grpo import _device_and_dtype, load_policy, load_split, validation_subset


def evaluate_model(model: str, tasks_path: str, out: str, *, limit: int | None = None,
                   config: str | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    cfg, _ = load_config(config, overrides or [], check_paths=False)
    device, dtype = _device_and_dtype(cfg)
    policy, tokenizer = load_policy(model, dtype, prefill_tool_call=cfg.env.workplace_assistant.prefill_tool_call)
    policy.to(device)
    policy.eval()
    tasks = validation_subset(load_split(tasks_path, cfg.data.categories), limit)
    gen = cfg.policy.generation
    episodes = run_episodes(policy, tokenizer, tasks, tool_mode=cfg.env.workplace_assistant.tools,
                            max_tool_steps=cfg.env.workplace_assistant.max_tool_steps,
                            max_new_tokens=gen.max_new_tokens, sampling=Sampling.validation(gen),
                            batch_size=cfg.grpo.val_batch_size or 8,
                            max_total_tokens=cfg.policy.max_total_sequence_length,
                            compiled=compiled_generation_wanted(gen.compiled_static_cache, device),
                            grouped_attention=gen.grouped_decode_attention)
    summary = summarise(episodes, cfg.logger.num_val_transcripts)
    summary.update({"model": str(model), "tasks": str(tasks_path)})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(summary, indent=2))
    return summary
