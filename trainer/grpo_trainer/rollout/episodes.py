"""Batched multi-turn episodes for validation and offline evaluation.

Training rollouts are TRL's own tool loop; this is the evaluation twin, built
on the same chat template, the same tool-call parser and the same
environment class, so validation numbers measure what training optimises.
Each turn generates for every still-active task at once (left padding), runs
the parsed tool calls, and stops a task when it answers without a call or
reaches `max_tool_steps` calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..model.chat_format import parse_assistant_turn
from ..training.compiled_generation import compiled_settings, static_cache_len, without_input_grad_hooks
from ..training.grouped_decode_attention import grouped_decode_attention
from .sampling import Sampling
from .tool_env import env_class, tool_schemas_for, tool_set_for


@dataclass
class Episode:
    task_id: Any
    category: str
    messages: list[dict[str, Any]]
    reward: float = 0.0
    tool_calls: int = 0
    generated_tokens: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)


def _generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int,
              sampling: Sampling, compiled: bool = False, grouped_attention: bool = True) -> list[list[int]]:
    import torch

    batch = tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(model.device)
    # The same route as training's rollouts (training/compiled_generation.py): a static cache sized
    # for this call lets `generate` compile its decoding step; on CPU it is a static cache only.
    static = ({**compiled_settings(), "max_cache_len": static_cache_len(prompts, max_new_tokens)}
              if compiled else {})
    with torch.no_grad(), without_input_grad_hooks(model), \
            grouped_decode_attention(model, compiled and grouped_attention):
        out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, use_cache=True,
                             **sampling.generate_kwargs(), **static)
    new = out[:, batch["input_ids"].shape[1]:]
    completions = []
    for row in new:
        ids = row.tolist()
        if tokenizer.eos_token_id in ids:  # eos doubles as pad: cut at the first one
            ids = ids[: ids.index(tokenizer.eos_token_id) + 1]
        completions.append(ids)
    return completions


def turn_prompt_ids(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[int]:
    """The tokens a turn is generated from: the conversation so far, its tools and the generation prompt."""
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def rollout_token_budget(tokenizer: Any, tasks: list[Any], *, tool_mode: str, max_new_tokens: int,
                         max_total_tokens: int) -> int:
    """Tokens a whole training rollout may use after its prompt (TRL's `max_completion_length`).

    The same bound as `run_episodes`: each turn up to `max_new_tokens`
    (policy.generation.max_new_tokens), the whole conversation, prompt included, within
    `max_total_tokens` (policy.max_total_sequence_length). TRL has one budget per step, so
    it is sized for the longest prompt among `tasks`; never less than one turn.
    """
    def first_prompt_tokens(task: Any) -> int:
        return len(turn_prompt_ids(tokenizer, task.messages, tool_schemas_for(tool_set_for(task.category, tool_mode))))

    longest = max((first_prompt_tokens(task) for task in tasks), default=0)
    return max(max_new_tokens, max_total_tokens - longest)


def run_episodes(model: Any, tokenizer: Any, tasks: list[Any], *, tool_mode: str, max_tool_steps: int,
                 max_new_tokens: int, sampling: Sampling, batch_size: int = 8,
                 max_total_tokens: int | None = None, compiled: bool = False,
                 grouped_attention: bool = True) -> list[Episode]:
    """Greedy or sampled tool-calling episodes. An episode whose next turn could outgrow
    `max_total_tokens` (policy.max_total_sequence_length) ends before it: one overlong
    conversation would otherwise pad its whole batch to its length. `compiled` decodes with
    a static KV cache (compiled on CUDA), as training's rollouts do, with `grouped_attention`
    (policy.generation.grouped_decode_attention) as they do."""
    episodes: list[Episode] = []
    for start in range(0, len(tasks), batch_size):
        chunk = tasks[start:start + batch_size]
        envs, tools, states = [], [], []
        for task in chunk:
            tool_set = tool_set_for(task.category, tool_mode)
            env = env_class(tool_set)()
            env.reset(ground_truth=json.dumps(task.ground_truth))
            envs.append(env)
            tools.append(tool_schemas_for(tool_set))
            states.append(Episode(task.id, task.category, [dict(m) for m in task.messages]))
        active = list(range(len(chunk)))
        while active:
            prompts = [turn_prompt_ids(tokenizer, states[i].messages, tools[i]) for i in active]
            if max_total_tokens is not None:
                fits = [n for n, ids in enumerate(prompts) if len(ids) + max_new_tokens <= max_total_tokens]
                for n in sorted(set(range(len(active))) - set(fits)):
                    states[active[n]].transcript.append({"role": "assistant", "text": "",
                                                         "stopped": "context full (policy.max_total_sequence_length)"})
                active, prompts = [active[n] for n in fits], [prompts[n] for n in fits]
                if not active:
                    break
            completions = _generate(model, tokenizer, prompts, max_new_tokens, sampling, compiled, grouped_attention)
            still = []
            for i, prompt_ids, ids in zip(active, prompts, completions, strict=True):
                ep = states[i]
                ep.generated_tokens += len(ids)
                turn = parse_assistant_turn(tokenizer, ids, prompt_ids)
                ep.messages.append(turn)
                ep.transcript.append({"role": "assistant", "text": tokenizer.decode(ids, skip_special_tokens=False)})
                calls = turn["tool_calls"]
                if not calls or ep.tool_calls >= max_tool_steps:
                    continue
                for call in calls[: max_tool_steps - ep.tool_calls]:
                    fn = call["function"]
                    args = fn.get("arguments") or {}
                    if isinstance(args, str):
                        result = envs[i]._session.call(fn["name"], args)
                    else:
                        method = getattr(envs[i], fn["name"], None)
                        result = (method(**args) if method and isinstance(args, dict)
                                  else envs[i]._session.call(fn["name"], args))
                    ep.tool_calls += 1
                    ep.messages.append({"role": "tool", "name": fn["name"], "content": result})
                    ep.transcript.append({"role": "tool", "name": fn["name"], "arguments": args, "result": result})
                if ep.tool_calls < max_tool_steps:
                    still.append(i)
            active = still
        for env, ep in zip(envs, states, strict=True):
            ep.reward = env.outcome()
        episodes.extend(states)
    return episodes


def summarise(episodes: list[Episode], num_transcripts: int = 3) -> dict[str, Any]:
    per_category: dict[str, list[float]] = {}
    for ep in episodes:
        per_category.setdefault(ep.category, []).append(ep.reward)
    n = len(episodes)
    return {
        "accuracy": sum(ep.reward for ep in episodes) / n if n else 0.0,
        "num_tasks": n,
        "per_category": {k: sum(v) / len(v) for k, v in sorted(per_category.items())},
        "avg_tool_calls": sum(ep.tool_calls for ep in episodes) / n if n else 0.0,
        "avg_generated_tokens": sum(ep.generated_tokens for ep in episodes) / n if n else 0.0,
        "transcripts": [{"task_id": ep.task_id, "category": ep.category, "reward": ep.reward,
                         "turns": ep.transcript} for ep in episodes[:num_transcripts]],
        # Per task, so two evaluations of the same tasks compare pairwise (the report's paired interval).
        "results": [{"task_id": ep.task_id, "category": ep.category, "reward": ep.reward} for ep in episodes],
    }
