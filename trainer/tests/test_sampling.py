"""Training's rollouts (TRL's GenerationConfig) and the evaluation runner (the pool probe, sampled
evaluations) draw every token from the same filtered distribution: `policy.generation.top_p/top_k`
reach both, and `top_k: null` means no filter on both."""

from __future__ import annotations

from typing import Any

import pytest

from grpo_trainer.config.loader import load_config
from grpo_trainer.rollout.sampling import Sampling

from .conftest import CPU_CONFIG, GPU_CONFIG, tiny_overrides


@pytest.mark.parametrize("config", [CPU_CONFIG, GPU_CONFIG])
def test_shipped_configs_keep_the_top_k_every_measured_run_used(config: Any) -> None:
    cfg, _ = load_config(config, [], check_paths=False)
    assert Sampling.rollouts(cfg.policy.generation).transformers_top_k == 50


def test_greedy_decoding_ignores_the_filters() -> None:
    assert Sampling(0.0, 0.5, 7).generate_kwargs() == {"do_sample": False, "top_p": None, "top_k": None}


@pytest.mark.parametrize("filters, kept", [
    (["policy.generation.top_k=null"], "all"),
    (["policy.generation.top_k=50"], 50),
    (["policy.generation.top_k=null", "policy.generation.top_p=0.5"], "some"),
])
def test_training_and_the_runner_filter_the_same_tokens(tiny_model: Any, task_files: Any, tmp_path: Any,
                                                         filters: list[str], kept: Any) -> None:
    import torch

    from grpo_trainer.rollout.episodes import run_episodes
    from grpo_trainer.training.grpo import build_trainer, load_split

    train, val = task_files
    cfg, _ = load_config(CPU_CONFIG, tiny_overrides(tiny_model, train, val, tmp_path) + filters)
    trainer, _, _ = build_trainer(cfg)
    model = trainer.model
    model.eval()
    generate = model.generate
    runner_calls: list[tuple[Any, Any, Any]] = []

    def recording_generate(**kwargs: Any) -> Any:
        out = generate(**kwargs, output_scores=True, return_dict_in_generate=True)
        runner_calls.append((kwargs["input_ids"], kwargs["attention_mask"], out.scores[0]))
        return out.sequences

    model.generate = recording_generate
    torch.manual_seed(0)
    run_episodes(model, trainer.processing_class, load_split(str(train), None)[:2], tool_mode="domain",
                 max_tool_steps=1, max_new_tokens=2, sampling=Sampling.rollouts(cfg.policy.generation))
    input_ids, attention_mask, runner_scores = runner_calls[0]
    # The first token of the same prompts, drawn the way TRL's tool loop draws it.
    trl = generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=trainer.generation_config,
                   max_new_tokens=1, output_scores=True, return_dict_in_generate=True)
    runner_kept, trl_kept = torch.isfinite(runner_scores), torch.isfinite(trl.scores[0])
    assert torch.equal(runner_kept, trl_kept)
    vocab = runner_scores.shape[-1]
    per_row = runner_kept.sum(dim=-1).tolist()
    if kept == "all":
        assert per_row == [vocab] * len(per_row)
    elif kept == "some":
        assert all(0 < n < vocab for n in per_row)
    else:
        assert per_row == [kept] * len(per_row)
