"""Compiled static-cache generation (training/compiled_generation.py): on only where asked or on CUDA,
and the cache sized per generate call. The speed and the graphs' validity across weight updates are
measured on a GPU (trainer/bench/bench_grpo_step_gpu.py, docs/benchmarks.md)."""

from __future__ import annotations

from typing import Any

import pytest

from grpo_trainer.config.loader import load_config
from grpo_trainer.training.compiled_generation import (
    CACHE_LEN_MULTIPLE,
    CompiledGenerationMixin,
    static_cache_len,
    wanted,
    without_input_grad_hooks,
)

from .conftest import CPU_CONFIG, GPU_CONFIG
from .test_grouped_decode_attention import _tiny_llama


def test_on_by_default_only_on_cuda() -> None:
    assert wanted(None, "cuda") is True
    assert wanted(None, "cpu") is False
    assert wanted(False, "cuda") is False
    assert wanted(True, "cpu") is True


def test_cache_length_is_the_longest_prompt_plus_the_budget_rounded_up() -> None:
    assert static_cache_len([[1] * 700, [1] * 900], 256) == 1280  # 1156 -> 5 x 256
    assert static_cache_len([[1] * 768], 256) == 1024
    assert static_cache_len([[1] * 769], 256) == 1280
    assert static_cache_len([], 256) == 256
    assert CACHE_LEN_MULTIPLE == 256


class FakeGRPOTrainer:
    """What the mixin touches of TRL's GRPOTrainer."""

    def __init__(self, use_vllm: bool = False) -> None:
        from transformers import GenerationConfig

        self.use_vllm = use_vllm
        self.use_transformers_continuous_batching = False
        # A whole rollout's budget, and one turn's (the trainer's generation_kwargs).
        self.max_completion_length = 2800
        self.model = None
        # As TRL 1.16 builds it (no vLLM): compilation off.
        self.generation_config = GenerationConfig(max_new_tokens=256, do_sample=True, disable_compile=True)
        self.seen: list[Any] = []
        self.attention_seen: list[str] = []

    def _generate_single_turn(self, prompt_ids: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        self.seen.append((len(prompt_ids), self.generation_config.max_cache_len))
        if self.model is not None:
            self.attention_seen.append(self.model.config._attn_implementation)
        return [[7] for _ in prompt_ids], None


class Trainer(CompiledGenerationMixin, FakeGRPOTrainer):
    pass


def test_enabled_trainer_compiles_a_static_cache_sized_per_call() -> None:
    trainer = Trainer()
    assert trainer.enable_compiled_generation() is True
    config = trainer.generation_config
    assert config.cache_implementation == "static"
    assert config.disable_compile is False
    assert config.compile_config.mode == "reduce-overhead"
    assert config.compile_config.fullgraph is False
    trainer._generate_single_turn([[1] * 700] * 64, None, {}, 8)  # first turn of every rollout
    trainer._generate_single_turn([[1] * 1400] * 5, None, {}, 1)  # a tool turn: fewer rows, longer prompts
    # Sized by one turn's tokens, not the whole rollout's budget.
    assert trainer.seen == [(64, 1024), (5, 1792)]


@pytest.mark.parametrize("grouped", [True, False])
def test_rollouts_decode_with_grouped_attention_only_inside_generate(grouped: bool) -> None:
    trainer = Trainer()
    trainer.model = _tiny_llama(heads=4, kv_heads=2)
    trainer.enable_compiled_generation(grouped_attention=grouped)
    trainer._generate_single_turn([[1] * 10] * 2, None, {}, 8)
    assert trainer.attention_seen == ["sdpa_grouped_decode" if grouped else "sdpa"]
    assert trainer.model.config._attn_implementation == "sdpa"  # training and checkpoints see SDPA


def test_not_enabled_leaves_trl_generation_alone() -> None:
    trainer = Trainer()
    trainer._generate_single_turn([[1] * 700] * 8, None, {}, 8)
    assert trainer.generation_config.disable_compile is True
    assert trainer.generation_config.cache_implementation is None
    assert trainer.seen == [(8, None)]


def test_vllm_generation_is_not_touched() -> None:
    trainer = Trainer(use_vllm=True)
    assert trainer.enable_compiled_generation() is False
    assert trainer.generation_config.disable_compile is True


@pytest.mark.parametrize("config", [CPU_CONFIG, GPU_CONFIG])
def test_config_key_defaults_to_auto_and_can_be_set(config: Any) -> None:
    cfg, _ = load_config(config, [], check_paths=False)
    assert cfg.policy.generation.compiled_static_cache is None
    cfg, _ = load_config(config, ["policy.generation.compiled_static_cache=false"], check_paths=False)
    assert cfg.policy.generation.compiled_static_cache is False


def test_cpu_trainer_generates_as_before(tiny_model: Any, task_files: Any, tmp_path: Any) -> None:
    from grpo_trainer.training.grpo import build_trainer

    from .conftest import tiny_overrides

    train, val = task_files
    cfg, _ = load_config(CPU_CONFIG, tiny_overrides(tiny_model, train, val, tmp_path))
    trainer, _, _ = build_trainer(cfg)
    assert trainer.compiled_generation is False
    assert trainer.generation_config.disable_compile is True
    assert trainer.generation_config.cache_implementation is None


def test_input_grad_hooks_are_off_while_generating_and_back_after() -> None:
    import torch

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)

        def get_input_embeddings(self) -> torch.nn.Module:
            return self.embed

    def make_inputs_require_grads(module: Any, inputs: Any, output: Any) -> None:  # transformers' hook, by name
        output.requires_grad_(True)

    def other_hook(module: Any, inputs: Any, output: Any) -> Any:
        return output * 2

    model = Model()
    for p in model.parameters():
        p.requires_grad_(False)
    model.embed.register_forward_hook(make_inputs_require_grads)
    model.embed.register_forward_hook(other_hook)
    model.embed.register_forward_hook(make_inputs_require_grads)  # the duplicate TRL's re-enabling leaves
    before = list(model.embed._forward_hooks.items())
    with without_input_grad_hooks(model):
        assert [h.__name__ for h in model.embed._forward_hooks.values()] == ["other_hook"]
        out = model.embed(torch.tensor([1, 2]))
        assert not out.requires_grad
    assert sorted(model.embed._forward_hooks.items(), key=lambda kv: kv[0]) == sorted(before, key=lambda kv: kv[0])
    assert model.embed(torch.tensor([1])).requires_grad
    with without_input_grad_hooks(None):  # no model: nothing to do
        pass


def test_evaluation_with_the_static_cache_decodes_the_same_episodes(tiny_model, task_files) -> None:
    """The evaluation route (`compiled=True`) only changes the cache: greedy episodes are identical
    to the dynamic cache's. On CPU nothing compiles; on CUDA the same call compiles its decoding step."""
    import torch

    from grpo_trainer.rollout.episodes import run_episodes
    from grpo_trainer.rollout.sampling import Sampling
    from grpo_trainer.training.grpo import load_policy, load_split

    torch.manual_seed(0)
    policy, tokenizer = load_policy(str(tiny_model), torch.float32, prefill_tool_call=True)
    policy.eval()
    tasks = load_split(str(task_files[1]), None)

    def episodes(compiled: bool) -> list[tuple[Any, int, str]]:
        eps = run_episodes(policy, tokenizer, tasks, tool_mode="domain", max_tool_steps=2, max_new_tokens=12,
                           sampling=Sampling(0.0), batch_size=3, compiled=compiled)
        return [(ep.task_id, ep.generated_tokens, repr(ep.transcript)) for ep in eps]

    dynamic = episodes(False)
    assert len(dynamic) == len(tasks) and all(tokens > 0 for _, tokens, _ in dynamic)
    assert episodes(True) == dynamic
