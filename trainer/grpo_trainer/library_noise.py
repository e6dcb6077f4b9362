"""Library messages that would bury the trainer's own log lines, each named so that nothing else is hidden.

* TRL's "experimental" banner for `environment_factory`, which the trainer uses knowingly.
* transformers 5's FutureWarnings for the gradient-checkpointing names TRL 1.16 still calls (the
  trainer's own setting already uses the new name, `activation_checkpointing`). Compiled generation
  re-enters `warnings.catch_warnings`, after which Python shows a once-per-place warning again: one GPU
  run logged the same line 389 times.
"""

from __future__ import annotations

import os
import warnings

_CHECKPOINTING_RENAMES = r"`(is_)?gradient_checkpointing(_enable|_disable)?` is deprecated and will be removed in v6"


def quiet_library_noise() -> None:
    """Call before TRL is imported, in every process that trains (the CLI and each Ray Train worker)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    warnings.filterwarnings("ignore", message=_CHECKPOINTING_RENAMES, category=FutureWarning)
