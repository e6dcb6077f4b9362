"""Training micro batches of similar length, each cut to its own longest row (issue #15).

TRL's GRPOTrainer pads a step's whole generation batch to one width: prompts on the left to the
longest prompt, completions (tool results included) on the right to the longest completion. It
then shuffles the rows and splits them into the micro batches of gradient accumulation, and every
micro batch keeps the full width. On the GPU config that is about 101k padded tokens for 64k real
ones at 64 rollouts (docs/benchmarks.md), all of them run through forward and backward.

`LengthGroupedBatchesMixin` sorts the rows by length before the split and trims each micro batch's
columns that are padding in every one of its rows. The gradient of the step does not change:

* TRL's losses ("dapo" normalizes by the step's token count, "grpo" averages over equal-sized micro
  batches) add up to the same sum whichever rows share a micro batch;
* attention masks out padding, and a rotary model sees only relative positions, so removing the
  columns left of every real prompt token shifts all positions by the same amount and changes
  nothing but rounding.

It applies only where a generation batch is one optimizer step (TRL's default `steps_per_generation`
= gradient accumulation, one iteration per batch): with several optimizer steps per batch, sorting
would decide which lengths each update sees, so TRL's shuffle stays.
"""
from __future__ import annotations

from typing import Any

PROMPT_KEYS = ("prompt_ids", "prompt_mask")


def _rows(batch: dict[str, Any]) -> int:
    return int(batch["prompt_mask"].shape[0])


def _is_row_aligned(value: Any, rows: int) -> bool:
    import torch

    if isinstance(value, torch.Tensor):
        return value.ndim >= 1 and value.shape[0] == rows
    return isinstance(value, list) and len(value) == rows


def _concat(batches: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    merged: dict[str, Any] = {}
    for key, first in batches[0].items():
        values = [b[key] for b in batches]
        if _is_row_aligned(first, _rows(batches[0])):
            if isinstance(first, torch.Tensor):
                merged[key] = torch.cat(values, dim=0)
            else:
                merged[key] = [x for v in values for x in v]
        else:  # a step-wide value (num_items_in_batch) or None: the same in every micro batch
            merged[key] = first
    return merged


def _take(value: Any, index: Any, rows: int) -> Any:
    if not _is_row_aligned(value, rows):
        return value
    if isinstance(value, list):
        return [value[i] for i in index.tolist()]
    return value[index.to(value.device)]


def trim_padding(batch: dict[str, Any]) -> dict[str, Any]:
    """Drop the prompt columns left of every row's first real token and the completion columns right
    of every row's last one (real: mask 1; tool results are real, the loss masks them separately)."""
    prompt_mask, completion_mask = batch["prompt_mask"], batch["completion_mask"]
    prompt_width, completion_width = prompt_mask.shape[1], completion_mask.shape[1]
    used = prompt_mask.bool().any(dim=0).nonzero()
    start = int(used[0]) if len(used) else prompt_width
    used = completion_mask.bool().any(dim=0).nonzero()
    end = int(used[-1]) + 1 if len(used) else 0
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key in PROMPT_KEYS:
            out[key] = value[:, start:]
        elif getattr(value, "ndim", 0) == 2 and value.shape[1] == completion_width:
            out[key] = value[:, :end]  # completion_ids, completion_mask, tool_mask, per-token log-probs
        else:
            out[key] = value
    return out


def group_by_length(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rows as `batches`, sorted by real length into as many micro batches of the same size,
    each trimmed by `trim_padding`."""
    import torch

    merged = _concat(batches)
    rows = _rows(merged)
    lengths = merged["prompt_mask"].sum(dim=1) + merged["completion_mask"].sum(dim=1)
    order = torch.argsort(lengths.cpu(), stable=True)
    ordered = {key: _take(value, order, rows) for key, value in merged.items()}
    size = rows // len(batches)
    return [trim_padding({key: _take(value, torch.arange(i * size, (i + 1) * size), rows)
                          for key, value in ordered.items()})
            for i in range(len(batches))]


def padded_tokens(batches: list[dict[str, Any]]) -> int:
    """Tokens forward and backward run on (rows x width, padding included), over the micro batches."""
    return sum(_rows(b) * (b["prompt_mask"].shape[1] + b["completion_mask"].shape[1]) for b in batches)


class LengthGroupedBatchesMixin:
    """Mixed into GRPOTrainer before it; `length_grouped_batches` switches it on (off by default, so
    a trainer built without asking behaves as TRL's)."""

    length_grouped_batches: bool = False
    # GRPOTrainer's, set in its __init__
    args: Any
    model: Any
    num_iterations: int
    _step: int
    _buffered_inputs: Any

    def _prepare_inputs(self, generation_batch: Any) -> Any:
        spg = self.args.steps_per_generation
        one_update = spg == self.args.gradient_accumulation_steps and self.num_iterations == 1
        step = self._step
        fresh = self.model.training and (step % spg == 0 or self._buffered_inputs is None)
        inputs = super()._prepare_inputs(generation_batch)  # type: ignore[misc]
        if not (one_update and fresh):
            return inputs
        buffered = self._buffered_inputs
        as_split = padded_tokens(buffered)
        if not self.length_grouped_batches or any(
                key not in PROMPT_KEYS and key.startswith(("pixel", "image", "num_images")) for key in buffered[0]):
            # as TRL split them (images travel with their own per-row layouts); the padding is still reported
            self.on_micro_batch_padding(as_split, as_split)
            return inputs
        grouped = group_by_length(buffered)
        self.on_micro_batch_padding(as_split, padded_tokens(grouped))
        self._buffered_inputs = grouped
        return grouped[step % spg]

    def on_micro_batch_padding(self, as_split: int, as_trained: int) -> None:
        """Called with the padded tokens of the step's micro batches as TRL split them and as trained
        (the same number when grouping is off)."""
