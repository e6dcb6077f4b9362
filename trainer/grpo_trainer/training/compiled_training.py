"""A compiled training forward (issue #15, docs/benchmarks.md Change 6).

On an H200 the whole SmolLM2-135M forward and backward ran at 22.0 % MFU eager and 27.8 % under
`torch.compile` (bench_training_ceiling.py): compiling fuses the small elementwise kernels (norms,
activations, rotary, residuals) around the 576-wide matrix products. TRL compiles nothing in training.
`CompiledTrainingForwardMixin` hands TRL's scoring (the forward that builds the loss) a
`torch.compile`d view of the same module: the same parameters, so the optimizer's in-place updates
reach it, with dynamic shapes, because every micro batch has its own width (or packed length).
Generation keeps its own route (compiled_generation.py).
"""
from __future__ import annotations

from typing import Any


class CompiledTrainingForwardMixin:
    """Mixed into GRPOTrainer before it; `compiled_training_forward` switches it on (off by default, so a
    trainer built without asking behaves as TRL's)."""

    compiled_training_forward: bool = False
    _compiled_views: dict[int, Any] | None = None

    def compiled_view(self, model: Any) -> Any:
        """One compiled view per module, made on first use and kept, so it compiles once per shape family."""
        import torch

        if self._compiled_views is None:
            self._compiled_views = {}
        if id(model) not in self._compiled_views:
            self._compiled_views[id(model)] = torch.compile(model, dynamic=True)
        return self._compiled_views[id(model)]

    def _get_per_token_logps_and_entropies(self, model: Any, *args: Any, **kwargs: Any) -> Any:
        if self.compiled_training_forward:
            model = self.compiled_view(model)
        return super()._get_per_token_logps_and_entropies(model, *args, **kwargs)  # type: ignore[misc]
