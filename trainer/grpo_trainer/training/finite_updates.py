"""Skip an optimizer update whose gradient is not finite; stop after a few in a row.

Applied, one non-finite gradient turns every weight into NaN. The run then goes on as if nothing
happened: the next checkpoint saves the NaN weights, and the next rollout dies in sampling with a
CUDA device-side assert ("probability tensor contains either `inf`, `nan` or element < 0") that
names no cause. That is how two H200 runs ended (docs/trainer.md, sixth session). Loss scalers of
mixed-precision training skip such updates; this callback does the same for bf16 and fp32 runs,
after HF's gradient clipping and before `optimizer.step()`. Under DDP the gradients are already
all-reduced there, so every rank sees the same verdict and skips the same step.

Several non-finite gradients in a row mean the run itself has diverged: it then stops with a
typed failure that the pipeline retries from the newest checkpoint, whose weights are still finite.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from ..errors import TrainerError

MAX_CONSECUTIVE_SKIPS = 3


class NonFiniteGradientError(TrainerError):
    failure_type = "Unknown"


def gradients_are_finite(model: Any) -> bool:
    import torch

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    # One device sync for the whole model, not one per tensor.
    return bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())


def drop_gradients(model: Any) -> None:
    """With no gradient, torch's optimizers leave a parameter (and its moments) untouched."""
    for p in model.parameters():
        p.grad = None


class SkipNonFiniteUpdates(TrainerCallback):
    def __init__(self, on_skip: Callable[[int, int], None] | None = None,
                 max_consecutive: int = MAX_CONSECUTIVE_SKIPS) -> None:
        self.on_skip = on_skip
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.skipped = 0

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> None:
        if model is None or gradients_are_finite(model):
            self.consecutive = 0
            return
        step = state.global_step + 1  # the step this update would complete
        self.consecutive += 1
        self.skipped += 1
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteGradientError(
                f"non-finite gradient in {self.consecutive} consecutive steps (the last: step {step}); "
                "the training diverged. No update with a non-finite gradient was applied, so the newest "
                "checkpoint holds finite weights; lower policy.optimizer.lr or policy.max_grad_norm")
        drop_gradients(model)
        if self.on_skip is not None:
            self.on_skip(step, self.consecutive)
