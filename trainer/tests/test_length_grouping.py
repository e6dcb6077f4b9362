"""Length-grouped micro batches: the same rows and the same gradient over fewer padded tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grpo_trainer.training.length_grouping import group_by_length, padded_tokens, trim_padding


def _batch(prompt_lens: list[int], completion_lens: list[int], vocab: int = 100, seed: int = 0) -> dict:
    """A generation batch as TRL builds it: prompts padded on the left, completions on the right, all
    rows to the longest of the batch; a tool result (masked out of the loss) inside each completion."""
    g = torch.Generator().manual_seed(seed)
    rows, pw, cw = len(prompt_lens), max(prompt_lens), max(completion_lens)
    prompt_ids = torch.zeros(rows, pw, dtype=torch.long)
    prompt_mask = torch.zeros(rows, pw, dtype=torch.long)
    completion_ids = torch.zeros(rows, cw, dtype=torch.long)
    completion_mask = torch.zeros(rows, cw, dtype=torch.long)
    tool_mask = torch.ones(rows, cw, dtype=torch.long)
    for r, (p, c) in enumerate(zip(prompt_lens, completion_lens, strict=True)):
        prompt_ids[r, pw - p:] = torch.randint(1, vocab, (p,), generator=g)
        prompt_mask[r, pw - p:] = 1
        completion_ids[r, :c] = torch.randint(1, vocab, (c,), generator=g)
        completion_mask[r, :c] = 1
        tool_mask[r, c // 3: c // 2] = 0
    return {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "completion_ids": completion_ids, "completion_mask": completion_mask, "tool_mask": tool_mask,
        "advantages": torch.randn(rows, generator=g),
        "old_per_token_logps": torch.randn(rows, cw, generator=g),
        "num_items_in_batch": (completion_mask * tool_mask).sum(),
        "task_id": [f"t{r}" for r in range(rows)],
    }


def _split(batch: dict, chunks: int) -> list[dict]:
    rows = batch["prompt_ids"].shape[0]
    size = rows // chunks
    out = []
    for i in range(chunks):
        part = {}
        for key, value in batch.items():
            if isinstance(value, list) or (isinstance(value, torch.Tensor) and value.ndim >= 1):
                part[key] = value[i * size:(i + 1) * size]
            else:
                part[key] = value
        out.append(part)
    return out


PROMPTS = [30, 12, 25, 12, 40, 18, 22, 35]
COMPLETIONS = [5, 60, 8, 44, 10, 7, 52, 9]


def _row_key(batch: dict, r: int) -> tuple:
    """A row's real tokens and its per-row values, wherever padding put it."""
    p = batch["prompt_ids"][r][batch["prompt_mask"][r].bool()].tolist()
    c = batch["completion_ids"][r][batch["completion_mask"][r].bool()].tolist()
    tool = batch["tool_mask"][r][batch["completion_mask"][r].bool()].tolist()
    logps = [round(x, 6) for x in batch["old_per_token_logps"][r][batch["completion_mask"][r].bool()].tolist()]
    return (tuple(p), tuple(c), tuple(tool), tuple(logps), round(float(batch["advantages"][r]), 6), batch["task_id"][r])


def test_grouping_keeps_every_row_whole_and_cuts_padding():
    batches = _split(_batch(PROMPTS, COMPLETIONS), 4)
    grouped = group_by_length(batches)
    assert len(grouped) == 4 and all(b["prompt_ids"].shape[0] == 2 for b in grouped)
    before = sorted(_row_key(b, r) for b in batches for r in range(2))
    after = sorted(_row_key(b, r) for b in grouped for r in range(2))
    assert after == before
    # step-wide values ride along unchanged
    assert all(int(b["num_items_in_batch"]) == int(batches[0]["num_items_in_batch"]) for b in grouped)
    # 8 rows x (40 + 60) padded before; sorted pairs need far fewer
    assert padded_tokens(batches) == 800
    assert padded_tokens(grouped) < 0.75 * padded_tokens(batches)
    # each micro batch is exactly as wide as its longest prompt and longest completion
    for b in grouped:
        assert b["prompt_mask"][:, 0].any() and b["completion_mask"][:, -1].any()


def test_trim_keeps_a_batch_that_has_no_padding_column():
    batch = _batch([5, 5], [3, 3])
    trimmed = trim_padding(batch)
    assert trimmed["prompt_ids"].shape == (2, 5) and trimmed["completion_ids"].shape == (2, 3)


def _loss_and_grads(model: torch.nn.Module, batches: list[dict]) -> tuple[float, list[torch.Tensor]]:
    """A token-level policy-gradient loss over micro batches, normalized by the step's token count, the
    way TRL's "dapo" loss sums over gradient accumulation."""
    model.zero_grad()
    total = 0.0
    for b in batches:
        ids = torch.cat([b["prompt_ids"], b["completion_ids"]], dim=1)
        mask = torch.cat([b["prompt_mask"], b["completion_mask"]], dim=1)
        width = b["completion_ids"].shape[1]
        logits = model(input_ids=ids, attention_mask=mask).logits[:, -width - 1:-1].float()
        logps = torch.log_softmax(logits, dim=-1).gather(-1, b["completion_ids"].unsqueeze(-1)).squeeze(-1)
        token_mask = (b["completion_mask"] * b["tool_mask"]).float()
        loss = -(logps * b["advantages"].unsqueeze(1) * token_mask).sum() / b["num_items_in_batch"]
        loss.backward()
        total += float(loss)
    return total, [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def test_grouped_micro_batches_give_the_same_loss_and_gradient(tiny_model: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    vocab = model.config.vocab_size
    batches = _split(_batch(PROMPTS, COMPLETIONS, vocab=vocab, seed=3), 4)
    grouped = group_by_length(batches)
    loss_split, grads_split = _loss_and_grads(model, batches)
    loss_grouped, grads_grouped = _loss_and_grads(model, grouped)
    assert loss_grouped == pytest.approx(loss_split, rel=1e-4, abs=1e-6)
    assert len(grads_grouped) == len(grads_split) > 0
    pairs = zip(grads_grouped, grads_split, strict=True)
    worst = max(float((a - b).abs().max() / (b.abs().max() + 1e-12)) for a, b in pairs)
    assert worst < 1e-3, worst
