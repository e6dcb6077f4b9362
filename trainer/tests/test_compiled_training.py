"""Compiled training forward: TRL's scoring through a torch.compile'd view gives the eager log-probs and gradient."""

from __future__ import annotations

from pathlib import Path

import torch

from grpo_trainer.training.compiled_training import CompiledTrainingForwardMixin
from grpo_trainer.training.packed_sequences import PackedSequencesMixin

from .test_packed_sequences import COMPLETIONS, PROMPTS, TrlScoring, _padded, _score, _tiny


class CompiledScoring(CompiledTrainingForwardMixin, TrlScoring):
    compiled_training_forward = True


class CompiledPackedScoring(CompiledTrainingForwardMixin, PackedSequencesMixin, TrlScoring):
    compiled_training_forward = True
    packed_sequences = True


def _close(got: tuple, want: tuple) -> None:
    torch.testing.assert_close(got[0], want[0], rtol=1e-3, atol=1e-3)  # fused kernels reorder float sums
    torch.testing.assert_close(got[1], want[1], rtol=1e-3, atol=1e-3)  # fused kernels reorder float sums
    pairs = zip(got[2], want[2], strict=True)
    worst = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in pairs)
    assert worst < 1e-3, worst


def test_compiled_scoring_matches_eager_and_reuses_one_view(tiny_model: Path):
    model = _tiny(tiny_model)
    ids, mask, keep = _padded(PROMPTS, COMPLETIONS, vocab=model.config.vocab_size, seed=5)
    want = _score(TrlScoring(), model, ids, mask, keep)
    compiled = CompiledScoring()
    _close(_score(compiled, model, ids, mask, keep), want)
    # a narrower batch runs through the same view (dynamic shapes), and still matches
    narrow = _padded(PROMPTS[:4], COMPLETIONS[:4], vocab=model.config.vocab_size, seed=6)
    _close(_score(compiled, model, *narrow), _score(TrlScoring(), model, *narrow))
    assert compiled._compiled_views is not None and list(compiled._compiled_views) == [id(model)]


def test_compiled_view_follows_in_place_weight_updates(tiny_model: Path):
    model = _tiny(tiny_model)
    ids, mask, keep = _padded(PROMPTS[:4], COMPLETIONS[:4], vocab=model.config.vocab_size, seed=7)
    compiled = CompiledPackedScoring()
    before = _score(compiled, model, ids, mask, keep)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.05)  # as an optimizer step changes weights in place
    after = _score(compiled, model, ids, mask, keep)
    assert not torch.allclose(after[0], before[0])
    _close(after, _score(TrlScoring(), model, ids, mask, keep))
