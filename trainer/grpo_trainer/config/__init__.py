"""Typed configuration of the built-in trainer (NeMo RL's section layout)."""

from .loader import load_config, parse_overrides
from .schema import TrainerConfig

__all__ = ["TrainerConfig", "load_config", "parse_overrides"]
