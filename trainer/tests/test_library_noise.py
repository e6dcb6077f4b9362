"""Only the library messages `library_noise.py` names are hidden from the trainer's log."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from grpo_trainer.library_noise import quiet_library_noise


def test_transformers_renames_that_trl_triggers_are_hidden_and_nothing_else(tiny_model: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoModelForCausalLM

    monkeypatch.delenv("TRL_EXPERIMENTAL_SILENCE", raising=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    other = "`other_name` is deprecated and will be removed in v6. Use `new_name` instead."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # as after compiled generation: every warning, every time
        quiet_library_noise()
        assert model.is_gradient_checkpointing is False  # the calls TRL 1.16 makes
        model.gradient_checkpointing_enable()
        model.gradient_checkpointing_disable()
        warnings.warn(other, FutureWarning, stacklevel=1)
        warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == [other, "a real problem"]
    assert os.environ["TRL_EXPERIMENTAL_SILENCE"] == "1"
