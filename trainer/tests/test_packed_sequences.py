"""Packed training forwards: each row's log-probs, entropies and gradient as TRL's padded path gives them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from grpo_trainer.training.packed_sequences import PackedSequencesMixin, plan_packing

PROMPTS = [30, 12, 25, 12, 40, 18, 22, 35]
COMPLETIONS = [5, 60, 8, 44, 10, 7, 52, 9]


def _padded(prompt_lens: list[int], completion_lens: list[int], vocab: int, seed: int = 0) -> tuple:
    """Input ids and attention mask as TRL lays them out: prompts padded on the left, completions on the right."""
    g = torch.Generator().manual_seed(seed)
    pw, cw = max(prompt_lens), max(completion_lens)
    ids = torch.zeros(len(prompt_lens), pw + cw, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, (p, c) in enumerate(zip(prompt_lens, completion_lens, strict=True)):
        ids[r, pw - p:pw + c] = torch.randint(1, vocab, (p + c,), generator=g)
        mask[r, pw - p:pw + c] = 1
    return ids, mask, cw


class TrlScoring:
    """TRL's own scoring function on a bare object: it needs only the accelerator's autocast."""

    from trl import GRPOTrainer

    _get_per_token_logps_and_entropies = GRPOTrainer._get_per_token_logps_and_entropies

    def __init__(self) -> None:
        self.accelerator = SimpleNamespace(autocast=contextlib.nullcontext, is_main_process=True)
        self.processing_class = SimpleNamespace(pad_token_id=0)
        self.forwards: list[tuple[int, int]] = []


class PackedScoring(PackedSequencesMixin, TrlScoring):
    packed_sequences = True

    def on_packed_forward(self, padded: int, packed: int) -> None:
        self.forwards.append((padded, packed))


@pytest.mark.parametrize("one_sequence", [False, True], ids=["bins", "one-sequence"])
def test_plan_places_every_row_once_without_overlap(one_sequence: bool):
    _, mask, _ = _padded(PROMPTS, COMPLETIONS, vocab=50)
    plan = plan_packing(mask, one_sequence=one_sequence)
    lengths = [p + c for p, c in zip(PROMPTS, COMPLETIONS, strict=True)]
    assert plan.lengths == lengths
    used: dict[int, set[int]] = {}
    for b, o, n in zip(plan.bins, plan.offsets, plan.lengths, strict=True):
        cells = set(range(o, o + n))
        assert o + n <= plan.bin_length and not (used.setdefault(b, set()) & cells)
        used[b] |= cells
    if one_sequence:  # every row end to end, not one padding token
        assert (plan.num_bins, plan.bin_length) == (1, sum(lengths)) and used[0] == set(range(sum(lengths)))
    else:
        assert plan.bin_length == max(lengths)
        assert plan.num_bins < len(lengths)  # 8 rows fit in fewer sequences than rows
        assert sum(lengths) < plan.num_bins * plan.bin_length < mask.numel()


def _tiny(tiny_model: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    return model


def _score(scorer: TrlScoring, model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> tuple:
    model.zero_grad()
    logps, entropy, _ = scorer._get_per_token_logps_and_entropies(model, ids, mask, keep, batch_size=4,
                                                                  compute_entropy=True)
    completion_mask = mask[:, -keep:].float()
    advantages = torch.linspace(-1, 1, ids.shape[0]).unsqueeze(1)
    (-(logps * advantages * completion_mask).sum() / completion_mask.sum()).backward()
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return logps.detach() * completion_mask, entropy.detach() * completion_mask, grads


def test_packed_scoring_matches_trl_padded_scoring(tiny_model: Path):
    model = _tiny(tiny_model)
    ids, mask, keep = _padded(PROMPTS, COMPLETIONS, vocab=model.config.vocab_size, seed=3)
    trl, packed = TrlScoring(), PackedScoring()
    logps_trl, entropy_trl, grads_trl = _score(trl, model, ids, mask, keep)
    logps_packed, entropy_packed, grads_packed = _score(packed, model, ids, mask, keep)
    assert logps_trl.abs().sum() > 0
    torch.testing.assert_close(logps_packed, logps_trl, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(entropy_packed, entropy_trl, rtol=1e-4, atol=1e-5)
    assert len(grads_packed) == len(grads_trl) > 0
    pairs = zip(grads_packed, grads_trl, strict=True)
    worst = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in pairs)
    assert worst < 1e-3, worst
    # two chunks of 4 rows, each run on fewer tokens than its padded rectangle
    assert len(packed.forwards) == 2 and all(p < padded for padded, p in packed.forwards)


def test_packing_off_is_trl_path(tiny_model: Path):
    model = _tiny(tiny_model)
    ids, mask, keep = _padded([6, 3], [4, 9], vocab=model.config.vocab_size)
    off = PackedScoring()
    off.packed_sequences = False
    with torch.no_grad():
        got, _, _ = off._get_per_token_logps_and_entropies(model, ids, mask, keep)
        want, _, _ = TrlScoring()._get_per_token_logps_and_entropies(model, ids, mask, keep)
    assert torch.equal(got, want) and off.forwards == []


@pytest.mark.parametrize("lengths", [[1, 1, 1], [7], [3, 5, 2, 8]])
def test_plan_handles_single_tokens_and_single_rows(lengths: list[int]):
    mask = torch.zeros(len(lengths), max(lengths) + 2, dtype=torch.long)
    for r, n in enumerate(lengths):
        mask[r, 2:2 + n] = 1
    for one_sequence in (False, True):
        plan = plan_packing(mask, one_sequence=one_sequence)
        assert plan.starts == [2] * len(lengths) and sorted(plan.lengths) == sorted(lengths)
        assert sum(plan.lengths) <= plan.num_bins * plan.bin_length
