"""How a turn is decoded, for training's rollouts (TRL) and the evaluation runner alike.

`policy.generation.top_k: null` means no top-k filter on both sides. It needs saying once,
here: transformers fills an unset top-k in an explicit `GenerationConfig` (TRL's route) with
its default 50, while an unset `generate` argument (the runner's route) adds no filter, so
the two drew from different distributions until both were given the same explicit value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.schema import GenerationConfig

NO_TOP_K = 0  # transformers' "off"; None would mean "use the default" on TRL's route


@dataclass(frozen=True)
class Sampling:
    temperature: float  # 0 decodes greedily and ignores the filters
    top_p: float = 1.0
    top_k: int | None = None

    @classmethod
    def rollouts(cls, gen: GenerationConfig) -> Sampling:
        """Training's sampling (policy.generation), as the pool probe must see it too."""
        return cls(gen.temperature, gen.top_p, gen.top_k)

    @classmethod
    def validation(cls, gen: GenerationConfig) -> Sampling:
        return cls(gen.val_temperature, gen.top_p, gen.top_k)

    @property
    def transformers_top_k(self) -> int:
        return NO_TOP_K if self.top_k is None else self.top_k

    def generate_kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            # None overrides sampling defaults a model's own generation config may carry, which
            # transformers would otherwise warn about under greedy decoding.
            return {"do_sample": False, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p,
                "top_k": self.transformers_top_k}
