"""A non-finite gradient is never applied: HF's real training loop skips that update and keeps going,
and several in a row stop the run with a typed failure while the weights are still finite."""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from grpo_trainer.failures import classify
from grpo_trainer.training.finite_updates import NonFiniteGradientError, SkipNonFiniteUpdates


class LossWithPoison(torch.nn.Module):
    """A linear regression whose loss becomes infinite on rows marked `poison`, as a numerically bad
    micro batch would: the backward pass then leaves non-finite gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, poison: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = (self.linear(x).squeeze(-1) ** 2).mean()
        return {"loss": loss * math.inf if bool(poison.any()) else loss}


class WeightsAfterEachStep(TrainerCallback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> None:
        self.weights.append(model.linear.weight.detach().clone())


def _train(tmp_path: Path, poisoned_steps: set[int], weights: WeightsAfterEachStep,
           steps: int = 5) -> tuple[SkipNonFiniteUpdates, list[tuple[int, int]]]:
    torch.manual_seed(0)
    rows = [{"x": torch.randn(4), "poison": torch.tensor(step in poisoned_steps)} for step in range(1, steps + 1)]
    skips: list[tuple[int, int]] = []
    guard = SkipNonFiniteUpdates(on_skip=lambda step, in_a_row: skips.append((step, in_a_row)))
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=1, max_steps=steps,
                             learning_rate=0.1, max_grad_norm=1.0, save_strategy="no", report_to=[],
                             logging_strategy="no", use_cpu=True, seed=0)
    trainer = Trainer(model=LossWithPoison(), args=args, train_dataset=rows, callbacks=[guard, weights])
    # rows in order, so "step 2" is the second row
    trainer._get_train_sampler = lambda *_a, **_k: torch.utils.data.SequentialSampler(rows)  # type: ignore[method-assign]
    trainer.train()
    return guard, skips


def test_a_non_finite_gradient_is_skipped_and_training_goes_on(tmp_path: Path) -> None:
    weights = WeightsAfterEachStep()
    guard, skips = _train(tmp_path, {2}, weights)
    assert skips == [(2, 1)]
    assert guard.skipped == 1
    after = weights.weights
    assert len(after) == 5
    assert torch.equal(after[1], after[0]), "the poisoned step's update must not be applied"
    assert not torch.equal(after[2], after[1]), "the next finite step trains again"
    assert all(torch.isfinite(w).all() for w in after)


def test_finite_gradients_are_left_alone(tmp_path: Path) -> None:
    weights = WeightsAfterEachStep()
    guard, skips = _train(tmp_path, set(), weights)
    assert skips == [] and guard.skipped == 0
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(weights.weights))


def test_three_in_a_row_stop_the_run_with_finite_weights(tmp_path: Path) -> None:
    weights = WeightsAfterEachStep()
    with pytest.raises(NonFiniteGradientError) as raised:
        _train(tmp_path, {2, 3, 4}, weights)
    assert "3 consecutive steps (the last: step 4)" in str(raised.value)
    assert classify(raised.value) == "Unknown"
    # steps 1-3 ended (2 and 3 skipped); the run stopped inside step 4 with step 1's weights, finite
    assert len(weights.weights) == 3
    assert torch.equal(weights.weights[2], weights.weights[0])
    assert torch.isfinite(weights.weights[2]).all()


def test_a_finite_step_resets_the_count(tmp_path: Path) -> None:
    guard, skips = _train(tmp_path, {1, 2, 4, 5}, WeightsAfterEachStep())
    assert skips == [(1, 1), (2, 2), (4, 1), (5, 2)]
    assert guard.consecutive == 2
