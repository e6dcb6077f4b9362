"""Variable-length attention for packed training forwards (training/varlen_packed_attention.py): each packed row
attends only to itself, with the same log-probs and gradient as TRL's padded scoring, reached only by packed
forwards with the switch on; every other call is transformers' SDPA as before. The flash kernel itself needs
CUDA; its speed is measured on a GPU (bench_grpo_step_gpu.py --training-variants, docs/benchmarks.md, Change 8)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grpo_trainer.training import varlen_packed_attention as varlen
from grpo_trainer.training.packed_sequences import plan_packing, sequence_starts

from .test_grouped_decode_attention import Attention, _tiny_llama
from .test_packed_sequences import COMPLETIONS, PROMPTS, PackedScoring, TrlScoring, _padded, _score

BIN, DIM = 24, 16
# two bins of 24 tokens: rows [0, 10), [10, 20), bin 0's unused tail [20, 24); rows [24, 40), [40, 48)
STARTS = [0, 10, 20, 24, 40, 48]


def _qkv(heads: int = 6, kv_heads: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return (torch.randn(2, heads, BIN, DIM, generator=g), torch.randn(2, kv_heads, BIN, DIM, generator=g),
            torch.randn(2, kv_heads, BIN, DIM, generator=g))


def _block_mask(starts: list[int]) -> torch.Tensor:
    """What transformers builds for packed rows: causal within a row, nothing across rows; [bins, 1, BIN, BIN]."""
    row = torch.zeros(starts[-1], dtype=torch.long)
    for a in starts[1:-1]:
        row[a:] += 1
    row = row.reshape(2, BIN)
    causal = torch.ones(BIN, BIN, dtype=torch.bool).tril()
    return ((row[:, :, None] == row[:, None, :]) & causal)[:, None]


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, starts: list[int]) -> torch.Tensor:
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=_block_mask(starts), scale=DIM ** -0.5,
                                                           enable_gqa=True)
    return out.transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, starts: list[int]) -> torch.Tensor:
    out, _ = varlen.packed_varlen_sdpa(Attention(q.shape[1] // k.shape[1]), q, k, v, None, scaling=DIM ** -0.5,
                                       packed_cu_seqlens=torch.tensor(starts, dtype=torch.int32),
                                       packed_max_length=16)
    return out


def test_sequence_starts_mark_each_row_and_each_unused_tail():
    _, mask, _ = _padded(PROMPTS, COMPLETIONS, vocab=50)
    plan = plan_packing(mask)
    width = plan.bin_length
    starts = sequence_starts(plan)
    assert starts[0] == 0 and starts[-1] == plan.num_bins * width and starts == sorted(set(starts))
    rows = {(b * width + o, b * width + o + n) for b, o, n in zip(plan.bins, plan.offsets, plan.lengths, strict=True)}
    segments = list(zip(starts[:-1], starts[1:], strict=True))
    assert rows <= set(segments)
    for a, z in set(segments) - rows:  # a bin's unused tail: to the end of its bin, after that bin's rows
        assert z % width == 0 and a // width == (z - 1) // width
        assert all(end <= a for _, end in rows if (end - 1) // width == a // width)


def test_each_row_attends_only_to_itself_as_under_the_block_mask():
    q, k, v = _qkv()
    want = _reference(q, k, v, STARTS)
    torch.testing.assert_close(_attend(q, k, v, STARTS), want, rtol=1e-5, atol=1e-5)
    # rows that could see each other would give other values: the starts are what isolate them
    assert not torch.allclose(_attend(q, k, v, [0, 24, 48]), want, atol=1e-3)


def test_calls_without_row_starts_are_transformers_sdpa(monkeypatch: pytest.MonkeyPatch):
    import transformers.integrations.sdpa_attention as sdpa

    seen: list[Any] = []
    monkeypatch.setattr(sdpa, "sdpa_attention_forward", lambda module, q, *a, **k: (seen.append(q.shape), (q, None))[1])
    q, k, v = _qkv()
    varlen.packed_varlen_sdpa(Attention(3), q, k, v, None, scaling=DIM ** -0.5)
    varlen.packed_varlen_sdpa(Attention(3), q[:, :, :1], k, v, None, scaling=DIM ** -0.5,
                              packed_cu_seqlens=torch.tensor(STARTS, dtype=torch.int32))  # one token over a cache
    assert seen == [q.shape, q[:, :, :1].shape]


OLD_TORCH = {"is_causal", "return_aux"}                      # varlen_attn as torch 2.9 first shipped it
NEW_TORCH = {"window_size", "enable_gqa", "scale", "return_aux"}


@pytest.mark.parametrize("keywords", [OLD_TORCH, NEW_TORCH], ids=["is_causal", "window_size"])
def test_flash_route_speaks_this_torchs_varlen_keywords(monkeypatch: pytest.MonkeyPatch, keywords: set[str]):
    """The CUDA kernel cannot run here: a stand-in with its signature checks what the route passes it."""
    from torch.nn.attention import varlen as torch_varlen

    passed: list[tuple[dict[str, Any], int]] = []

    def cuda_varlen_kernel_stand_in(q: Any, k: Any, v: Any, cu_q: Any, cu_k: Any, max_q: int, max_k: int,
                                    **options: Any) -> Any:
        assert set(options) <= keywords and cu_q is cu_k and max_q == max_k == 16
        assert options.get("is_causal") or options.get("window_size") == (-1, 0)
        passed.append((options, k.shape[1]))
        return varlen._causal_by_row(q, k, v, cu_q, options.get("scale"))

    monkeypatch.setattr(torch_varlen, "varlen_attn", cuda_varlen_kernel_stand_in)
    monkeypatch.setattr(varlen, "_KERNEL_KEYWORDS", set(keywords))
    q, k, v = _qkv()
    flat = [t.transpose(1, 2).reshape(2 * BIN, t.shape[1], DIM) for t in (q, k, v)]
    starts = torch.tensor(STARTS, dtype=torch.int32)
    got = varlen._flash_varlen(*flat, starts, 16, DIM ** -0.5)
    torch.testing.assert_close(got.reshape(2, BIN, 6, DIM), _reference(q, k, v, STARTS), rtol=1e-5, atol=1e-5)
    options, kv_heads = passed[0]
    # without enable_gqa the grouped heads are repeated first, as transformers' repeat_kv does
    assert kv_heads == (2 if "enable_gqa" in keywords else 6)
    if keywords is OLD_TORCH:
        with pytest.raises(RuntimeError, match="takes no scale"):
            varlen._flash_varlen(*flat, starts, 16, 0.5)


@pytest.fixture
def sdpa_restored() -> Any:
    """install() routes this process's "sdpa" attention; the test's process gets transformers' own back after."""
    from transformers import AttentionInterface

    own = AttentionInterface._global_mapping["sdpa"]
    yield own
    AttentionInterface.register("sdpa", own)


@pytest.mark.parametrize("in_bins", [False, True], ids=["one-sequence", "bins"])
def test_packed_scoring_with_varlen_matches_trl(monkeypatch: pytest.MonkeyPatch, sdpa_restored: Any, in_bins: bool):
    from trl.trainer.utils import add_fused_lm_head

    model = _tiny_llama().float().train()
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    rows: list[int] = []
    by_row = varlen._causal_by_row
    monkeypatch.setattr(varlen, "_causal_by_row", lambda q, *a: (rows.append(q.shape[0]), by_row(q, *a))[1])
    ids, mask, keep = _padded(PROMPTS, COMPLETIONS, vocab=model.config.vocab_size, seed=5)
    logps_trl, entropy_trl, grads_trl = _score(TrlScoring(), model, ids, mask, keep)
    scorer = PackedScoring()
    scorer.packed_varlen_attention, scorer.varlen_in_bins = True, in_bins
    logps, entropy, grads = _score(scorer, model, ids, mask, keep)
    # each of the 2 layers of each micro batch attended over that micro batch's packed tokens
    assert rows == [packed for _, packed in scorer.forwards for _layer in range(2)] and len(rows) == 4
    real = [int(mask[start:start + 4].sum()) for start in (0, 4)]  # _score's micro batches of 4 rows
    packed = [n for _, n in scorer.forwards]
    # one sequence runs no padding (Change 9); these micro batches leave room in Change 8's bins
    assert all((p > r) if in_bins else (p == r) for p, r in zip(packed, real, strict=True)), (packed, real)
    torch.testing.assert_close(logps, logps_trl, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(entropy, entropy_trl, rtol=1e-4, atol=1e-5)
    worst = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in zip(grads, grads_trl, strict=True))
    assert worst < 1e-3, worst


def test_installed_sdpa_leaves_every_other_call_as_it_was(sdpa_restored: Any):
    """Generation and padded scoring run through the installed "sdpa" too: without row starts, the same values."""
    from transformers import AttentionInterface

    model = _tiny_llama()
    ids = torch.randint(3, 300, (3, 17), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
        assert varlen.install() and AttentionInterface._global_mapping["sdpa"] is varlen.packed_varlen_sdpa
        after = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(before, after) and model.config._attn_implementation == "sdpa"


def test_switch_off_passes_no_row_starts(monkeypatch: pytest.MonkeyPatch, sdpa_restored: Any):
    from trl.trainer.utils import add_fused_lm_head

    model = _tiny_llama().float()
    add_fused_lm_head(model)
    varlen.install()
    seen: list[bool] = []
    monkeypatch.setattr(varlen, "_causal_by_row", lambda *a: seen.append(True))
    ids, mask, keep = _padded([6, 3], [4, 9], vocab=model.config.vocab_size)
    with torch.no_grad():
        PackedScoring()._get_per_token_logps_and_entropies(model, ids, mask, keep)
    assert seen == []


@pytest.mark.parametrize("varlen_on", [True, False], ids=["varlen", "block-mask"])
def test_varlen_forwards_build_no_token_by_token_mask(monkeypatch: pytest.MonkeyPatch, sdpa_restored: Any,
                                                      varlen_on: bool):
    """With the row starts the mask is a stand-in; without them transformers builds the packed block mask."""
    import transformers.models.llama.modeling_llama as llama
    from trl.trainer.utils import add_fused_lm_head

    built: list[tuple[int, ...]] = []
    create = llama.create_causal_mask

    def recording_create_causal_mask(**kwargs: Any) -> Any:
        mask_ = create(**kwargs)
        built.append(tuple(mask_.shape))
        return mask_

    monkeypatch.setattr(llama, "create_causal_mask", recording_create_causal_mask)
    model = _tiny_llama().float()
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    ids, mask, keep = _padded(PROMPTS, COMPLETIONS, vocab=model.config.vocab_size, seed=5)
    scorer = PackedScoring()
    scorer.packed_varlen_attention = varlen_on
    logps, _, _ = _score(scorer, model, ids, mask, keep)
    packed = [n for _, n in scorer.forwards]
    assert len(built) == len(packed) == 2 and logps.abs().sum() > 0
    if varlen_on:
        assert all(shape[-2:] == (0, 0) for shape in built), built
    else:  # bins of the longest row, each its own square
        assert all(shape[-1] == shape[-2] > 0 for shape in built), built


def test_varlen_refuses_attention_dropout_it_cannot_apply():
    q, k, v = _qkv()
    with pytest.raises(RuntimeError, match="policy.packed_varlen_attention"):
        varlen.packed_varlen_sdpa(Attention(3), q, k, v, varlen.mask_stand_in(q.device), dropout=0.1,
                                  scaling=DIM ** -0.5, packed_cu_seqlens=torch.tensor(STARTS, dtype=torch.int32))
