"""Rollouts decoded with a static KV cache and a compiled decoding step (CUDA only; issue #15).

Without vLLM, TRL's GRPOTrainer decodes rollouts with Hugging Face `generate` and a
dynamic KV cache. For a 135M model the GPU then waits on Python launching every
layer's kernels for every token (docs/benchmarks.md, "Scaling"). With a static
cache every decoding step has the same shapes, and `generate` compiles the step
by itself (torch.compile, mode "reduce-overhead", i.e. CUDA graphs), unless the
generation config says `disable_compile`, which TRL 1.16 hard-codes when it
builds `GRPOTrainer.generation_config`. `CompiledGenerationMixin` undoes only
that, after TRL's `__init__`, and sizes the static cache per `generate` call.

What changes (`enable_compiled_generation`, on the plain `generate` path only,
not with vLLM or transformers' continuous batching):
* `generation_config.cache_implementation = "static"`, `disable_compile = False`
  and an explicit `CompileConfig` (transformers' defaults, written out);
* before each `generate` call (the first turn of every rollout, and each turn of
  TRL's tool loop), `generation_config.max_cache_len` = the call's longest
  prompt + one turn's `max_new_tokens`, rounded up to `CACHE_LEN_MULTIPLE` tokens,
  so the cache is as long as the call needs (every decoding step reads all of
  it) while a run sees only a few distinct lengths. transformers never shrinks
  the static cache within a process (`_previous_max_cache_length`).
* inside each call, attention reads the cached key/value heads as they are grouped
  instead of repeating them per query head (training/grouped_decode_attention.py,
  `policy.generation.grouped_decode_attention`).

Why the compiled graphs stay valid:
* weight updates: dynamo takes the parameters as graph inputs and the CUDA
  graphs read them where they live; the optimizer updates them in place (same
  storage), so every replay uses the current weights. Checked on a GPU by
  `trainer/bench/bench_grpo_step_gpu.py --check` (compiled vs eager logits
  after an in-place change of every weight).
* the tool loop: its `generate` calls have fewer rollouts and longer prompts.
  dynamo compiles again once for the first new batch size and once for the
  first new cache length, then treats those sizes as dynamic (automatic
  dynamic shapes); CUDA graphs record one graph per distinct shape, on first
  use. Prefill runs uncompiled, so prompt lengths need no padding.
* offline evaluation (`grpo_trainer evaluate`, `rollout/episodes.py`) decodes the
  same way when this setting is on; in-training validation keeps the dynamic cache
  (it shares the policy, and so its static cache, with the rollouts).
* the input-embedding hooks that gradient checkpointing adds are taken off for
  each call (`without_input_grad_hooks`): with torch 2.11 they broke every
  decoding step into about ten graphs, and their growing number recompiles.

`policy.generation.compiled_static_cache` (null = on when the policy runs on
CUDA) turns it on or off; CPU runs are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .grouped_decode_attention import grouped_decode_attention

CACHE_LEN_MULTIPLE = 256


def wanted(setting: bool | None, device: str) -> bool:
    """Whether to decode with the compiled static cache: the config's choice, else on CUDA only."""
    return device == "cuda" if setting is None else bool(setting)


def static_cache_len(prompt_ids: list[list[int]], max_new_tokens: int, multiple: int = CACHE_LEN_MULTIPLE) -> int:
    """Cache length for one `generate` call: longest prompt + new tokens, rounded up to `multiple`."""
    need = max((len(p) for p in prompt_ids), default=0) + max_new_tokens
    return -(-need // multiple) * multiple


def compile_config() -> Any:
    from transformers import CompileConfig

    # transformers' defaults, written out: CUDA graphs, graph breaks allowed, automatic dynamic shapes.
    return CompileConfig(fullgraph=False, dynamic=None, backend="inductor", mode="reduce-overhead")


def compiled_settings() -> dict[str, Any]:
    """The generation settings that make `generate` decode with a static cache and compile its step."""
    return {"cache_implementation": "static", "disable_compile": False, "compile_config": compile_config()}


class CompiledGenerationMixin:
    """Mix in before TRL's `GRPOTrainer`; call `enable_compiled_generation()` after construction."""

    compiled_generation = False
    grouped_attention = True

    def enable_compiled_generation(self, grouped_attention: bool = True) -> bool:
        trainer: Any = self
        if getattr(trainer, "use_vllm", False) or getattr(trainer, "use_transformers_continuous_batching", False):
            return False
        for name, value in compiled_settings().items():
            setattr(trainer.generation_config, name, value)
        self.compiled_generation = True
        self.grouped_attention = grouped_attention
        return True

    def _generate_single_turn(self, prompt_ids: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        trainer: Any = self
        if not self.compiled_generation:
            return super()._generate_single_turn(prompt_ids, *args, **kwargs)  # type: ignore[misc]
        trainer.generation_config.max_cache_len = static_cache_len(prompt_ids,
                                                                 trainer.generation_config.max_new_tokens)
        with without_input_grad_hooks(trainer.model), \
                grouped_decode_attention(trainer.model, self.grouped_attention):
            return super()._generate_single_turn(prompt_ids, *args, **kwargs)  # type: ignore[misc]


@contextmanager
def without_input_grad_hooks(model: Any) -> Iterator[None]:
    """No `requires_grad_` hooks on the input embeddings while generating; put back afterwards.

    With gradient checkpointing on (TRL's default), transformers puts a forward hook on the input
    embeddings that calls `output.requires_grad_(True)` (`enable_input_require_grads`). Each time
    TRL turns checkpointing back on (after a `generate` call, after scoring) it adds one more and
    never removes the old ones (transformers 5.23 / TRL 1.16). In the compiled decoding step such a
    hook is a graph break (torch 2.11: the step ran as about ten graphs with Python between them),
    and a hook count that changes between calls makes dynamo compile again. Under `no_grad` the hook
    does nothing, so every one of them is taken off the module for the call and put back after it,
    unchanged (training sees the same hooks as without this module).
    """
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    hooks = getattr(embeddings, "_forward_hooks", None)
    taken = {key: hook for key, hook in (hooks or {}).items()
             if getattr(hook, "__name__", "") == "make_inputs_require_grads"}
    for key in taken:
        del hooks[key]  # type: ignore[index]
    try:
        yield
    finally:
        if taken:
            hooks.update(taken)  # type: ignore[union-attr]
