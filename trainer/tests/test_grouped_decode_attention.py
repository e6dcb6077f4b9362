"""Grouped decoding attention (training/grouped_decode_attention.py): the same attention as transformers'
SDPA path, eager and compiled, used only inside the block. Its speed is measured on a GPU
(trainer/bench/bench_generate_latency.py, docs/benchmarks.md, Change 7)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grpo_trainer.training import grouped_decode_attention as grouped
from grpo_trainer.training.compiled_generation import compiled_settings


class Attention(torch.nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.num_key_value_groups = groups
        self.is_causal = True


def _repeated(module: Any, *args: Any) -> torch.Tensor:
    from transformers.integrations.sdpa_attention import repeat_kv

    query, key, value, mask = args
    key, value = repeat_kv(key, module.num_key_value_groups), repeat_kv(value, module.num_key_value_groups)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=0.125)
    return out.transpose(1, 2)


@pytest.mark.parametrize("groups", [2, 3])
def test_one_token_query_matches_repeated_heads(groups: int) -> None:
    torch.manual_seed(groups)
    kv_heads, length, dim = 3, 40, 64
    query = torch.randn(5, kv_heads * groups, 1, dim)
    key, value = torch.randn(5, kv_heads, length, dim), torch.randn(5, kv_heads, length, dim)
    mask = torch.rand(5, 1, 1, length) > 0.3  # a static cache's padding: shared by every head
    mask[..., 0] = True
    module = Attention(groups)
    got, _ = grouped.grouped_decode_sdpa(module, query, key, value, mask, scaling=0.125)
    want = _repeated(module, query, key, value, mask)
    assert got.shape == (5, 1, kv_heads * groups, dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_longer_queries_go_to_transformers_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers.integrations import sdpa_attention

    seen: list[tuple[int, ...]] = []
    real = sdpa_attention.sdpa_attention_forward

    def spy(module: Any, query: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append(tuple(query.shape))
        return real(module, query, *args, **kwargs)

    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", spy)
    module = Attention(3)
    prefill = torch.randn(2, 9, 7, 64)
    kv = torch.randn(2, 3, 7, 64)
    grouped.grouped_decode_sdpa(module, prefill, kv, kv, None, scaling=0.125)
    per_head_mask = torch.ones(2, 9, 1, 7, dtype=torch.bool)
    grouped.grouped_decode_sdpa(module, prefill[:, :, :1], kv, kv, per_head_mask, scaling=0.125)
    assert seen == [(2, 9, 7, 64), (2, 9, 1, 64)]


def _tiny_llama(attn: str = "sdpa", heads: int = 6, kv_heads: int = 2) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=96, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                         pad_token_id=0, eos_token_id=1, bos_token_id=2, attn_implementation=attn)
    return LlamaForCausalLM(config).eval()


def _decode(model: Any, compiled: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(3, 300, (4, 11), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding, as rollouts are batched
    settings: dict[str, Any] = {"cache_implementation": "static", "max_cache_len": 256}
    if compiled:
        settings = {**compiled_settings(), "max_cache_len": 256}
        settings["compile_config"]._compile_all_devices = True  # transformers compiles on CUDA only by default
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                             output_logits=True, return_dict_in_generate=True, pad_token_id=0, eos_token_id=1,
                             **settings)
    return out.sequences, torch.stack(out.logits)


def test_decoding_inside_the_block_matches_sdpa_and_leaves_sdpa_behind() -> None:
    model = _tiny_llama()
    want_ids, want_logits = _decode(model, compiled=False)
    with grouped.grouped_decode_attention(model) as used:
        assert used and model.config._attn_implementation == grouped.NAME
        got_ids, got_logits = _decode(model, compiled=False)
    assert model.config._attn_implementation == "sdpa"
    assert torch.equal(got_ids, want_ids)
    torch.testing.assert_close(got_logits, want_logits, rtol=1e-5, atol=1e-5)


def test_compiled_decoding_step_folds_the_heads_and_matches_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    torch._dynamo.reset()
    model = _tiny_llama()
    want_ids, want_logits = _decode(model, compiled=False)
    folded: list[tuple[int, ...]] = []
    real = grouped.grouped_decode_sdpa

    def spy(module: Any, query: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        folded.append(tuple(query.shape))  # runs while dynamo traces the decoding step
        return real(module, query, *args, **kwargs)

    monkeypatch.setattr(grouped, "grouped_decode_sdpa", spy)
    with grouped.grouped_decode_attention(model):
        got_ids, got_logits = _decode(model, compiled=True)
    assert (4, 6, 1, 16) in folded  # one-token queries of the compiled step came through the fold
    assert hasattr(model, "_compiled_call") and torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert torch.equal(got_ids, want_ids)
    torch.testing.assert_close(got_logits, want_logits, rtol=1e-4, atol=1e-4)


def test_off_or_not_applicable_leaves_the_model_alone() -> None:
    for model, enabled in ((_tiny_llama(), False), (_tiny_llama(attn="eager"), True),
                           (_tiny_llama(heads=4, kv_heads=4), True)):
        before = model.config._attn_implementation
        with grouped.grouped_decode_attention(model, enabled) as used:
            assert not used and model.config._attn_implementation == before


def test_the_model_gets_its_implementation_back_after_an_error() -> None:
    model = _tiny_llama()
    with pytest.raises(RuntimeError), grouped.grouped_decode_attention(model):
        raise RuntimeError("generate failed")
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize(("compiled", "grouped_on", "want"), [(True, True, grouped.NAME), (True, False, "sdpa"),
                                                              (False, True, "sdpa")])
def test_evaluation_episodes_decode_with_it_only_on_the_compiled_route(tiny_model: Any, compiled: bool,
                                                                       grouped_on: bool, want: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grpo_trainer.rollout.episodes import _generate
    from grpo_trainer.rollout.sampling import Sampling

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    seen: list[str] = []
    real = model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(model.config._attn_implementation)
        return real(*args, **kwargs)

    model.generate = spy
    _generate(model, tokenizer, [[5, 6, 7], [8, 9]], 3, Sampling(0.0, 1.0, None), compiled, grouped_on)
    assert seen == [want] and model.config._attn_implementation == "sdpa"
