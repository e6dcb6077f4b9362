"""Training forwards on packed rows instead of padded ones (issue #15, docs/benchmarks.md Change 5).

TRL scores a micro batch as one padded rectangle: every row as wide as the batch's longest prompt
(padded on the left) plus its longest completion (padded on the right). In real runs of the GPU config
that is 3.6 padded tokens per real one (212k for 58k per step), and forward and backward run on all of
them. `PackedSequencesMixin` instead strips each row to its real tokens and packs the rows, longest
first, into as few sequences as hold them, each as long as the micro batch's longest row. Every row
restarts its position ids at 0; transformers reads such position ids (with no attention mask and no
cache) as packed sequences and keeps each row's attention to itself, so a row's log-probs are the ones
it would get alone. The per-token log-probs (and entropies) are then put back in TRL's layout, so the
loss, the masks and the advantages see exactly what they saw before.

With `policy.packed_varlen_attention` (Change 8) attention follows the row starts, not the sequences, so
the rows go end to end into one sequence with no padding at all (Change 9): bins as long as the longest
row left about a tenth of the packed tokens empty in real runs.

A rotary model sees only relative positions, so starting each row at 0 instead of after its left
padding changes nothing but rounding. Multimodal inputs, and MoE models' auxiliary loss, keep TRL's
own path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .varlen_packed_attention import install as install_varlen_attention
from .varlen_packed_attention import mask_stand_in


@dataclass(frozen=True)
class Packing:
    """Where each row's real tokens went: row i's j-th real token sits at (bins[i], offsets[i] + j)."""

    bins: list[int]
    offsets: list[int]
    starts: list[int]      # column of row i's first real token in the padded layout
    lengths: list[int]     # real tokens of row i
    num_bins: int
    bin_length: int


def plan_packing(attention_mask: Any, one_sequence: bool = False) -> Packing:
    """First-fit decreasing of the rows' real lengths into bins as long as the longest row, or, with
    `one_sequence`, all of them into one bin exactly as long as their sum (only for attention that reads the
    row starts: a block mask over it would be the whole micro batch squared). A row's real tokens are
    contiguous in TRL's layout: left-padded prompt, then the completion, padded on the right."""
    mask = attention_mask.bool()
    lengths = mask.sum(dim=1).tolist()
    starts = mask.int().argmax(dim=1).tolist()
    capacity = max(sum(lengths) if one_sequence else max(lengths, default=1), 1)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    free: list[int] = []
    bins, offsets = [0] * len(lengths), [0] * len(lengths)
    for i in order:
        target = next((b for b, room in enumerate(free) if room >= lengths[i]), None)
        if target is None:
            free.append(capacity)
            target = len(free) - 1
        bins[i], offsets[i] = target, capacity - free[target]
        free[target] -= lengths[i]
    return Packing(bins, offsets, starts, lengths, max(len(free), 1), capacity)


def pack(input_ids: Any, labels: Any, packing: Packing, pad_id: int) -> tuple[Any, Any, Any]:
    """Packed input ids, labels (-100 where nothing is scored) and position ids, each [bins, bin_length].
    The unused tail of a bin counts as one more sequence of its own (positions from 0), scored nowhere."""
    import torch

    shape = (packing.num_bins, packing.bin_length)
    ids = torch.full(shape, pad_id, dtype=input_ids.dtype, device=input_ids.device)
    out_labels = torch.full(shape, -100, dtype=labels.dtype, device=labels.device)
    positions = torch.zeros(shape, dtype=torch.long, device=input_ids.device)
    filled = [0] * packing.num_bins
    for i, (b, o, s, n) in enumerate(zip(packing.bins, packing.offsets, packing.starts, packing.lengths, strict=True)):
        ids[b, o:o + n] = input_ids[i, s:s + n]
        out_labels[b, o:o + n] = labels[i, s:s + n]
        positions[b, o:o + n] = torch.arange(n, device=input_ids.device)
        filled[b] = max(filled[b], o + n)
    for b, end in enumerate(filled):
        positions[b, end:] = torch.arange(packing.bin_length - end, device=input_ids.device)
    return ids, out_labels, positions


def sequence_starts(packing: Packing) -> list[int]:
    """Where each packed sequence starts with the bins laid end to end (bin b from b * bin_length), then the
    end of the last: every row is a sequence, and so is a bin's unused tail (as `pack` numbers its positions).
    What a variable-length attention kernel takes as its cumulative sequence lengths."""
    total = packing.num_bins * packing.bin_length
    starts: set[int] = set()
    for b in range(packing.num_bins):
        base = b * packing.bin_length
        ends = [o + n for bb, o, n in zip(packing.bins, packing.offsets, packing.lengths, strict=True) if bb == b]
        starts.update(base + o for bb, o in zip(packing.bins, packing.offsets, strict=True) if bb == b)
        starts.add(base + max(ends, default=0))  # the tail's start, or the next bin's when the bin is full
    return sorted(s for s in starts if s < total) + [total]


def unpack(per_token: Any, packing: Packing, width: int) -> Any:
    """Per-token values of the packed forward ([bins, bin_length - 1], position q scoring token q + 1, as
    TRL's fused head returns them) back in the padded layout ([rows, width - 1], the same shift), zeros
    where a row has no real token. Differentiable: built by one gather."""
    import torch

    rows = len(packing.lengths)
    source = torch.full((rows, width - 1), -1, dtype=torch.long, device=per_token.device)
    span = per_token.shape[1]
    for i, (b, o, s, n) in enumerate(zip(packing.bins, packing.offsets, packing.starts, packing.lengths, strict=True)):
        if n > 1:  # the value scoring real token j (j >= 1) sits at packed q = o + j - 1, padded column s + j - 1
            source[i, s:s + n - 1] = b * span + o + torch.arange(n - 1, device=per_token.device)
    flat = per_token.reshape(-1)
    picked = flat[source.clamp(min=0)]
    return torch.where(source >= 0, picked, torch.zeros((), dtype=picked.dtype, device=picked.device))


class PackedSequencesMixin:
    """Mixed into GRPOTrainer before it; `packed_sequences` switches it on (off by default, so a trainer
    built without asking behaves as TRL's)."""

    packed_sequences: bool = False
    # attend within each row through variable-length flash attention (varlen_packed_attention.py)
    packed_varlen_attention: bool = False
    # with varlen, keep Change 8's bins instead of one sequence: only the benchmark sets it, to measure Change 9
    varlen_in_bins: bool = False
    # GRPOTrainer's, set in its __init__
    accelerator: Any
    processing_class: Any

    def _get_per_token_logps_and_entropies(self, model: Any, input_ids: Any, attention_mask: Any,
                                           logits_to_keep: int, batch_size: int | None = None,
                                           compute_entropy: bool = False, compute_aux_loss: bool = False,
                                           **extra: Any) -> Any:
        if not self.packed_sequences or compute_aux_loss or any(v is not None for v in extra.values()):
            return super()._get_per_token_logps_and_entropies(  # type: ignore[misc]
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss,
                **extra)
        import torch

        batch_size = batch_size or input_ids.size(0)
        pad_id = self.processing_class.pad_token_id or 0
        width = input_ids.size(1)
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            ids, mask = input_ids[start:start + batch_size], attention_mask[start:start + batch_size]
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :-logits_to_keep] = -100  # only completion tokens are scored, as TRL does
            packing = self.plan_packed_forward(mask)
            packed_ids, packed_labels, positions = pack(ids, labels, packing, pad_id)
            if torch.is_grad_enabled():
                self.on_packed_forward(int(ids.numel()), packing.num_bins * packing.bin_length)
            rows: dict[str, Any] = {}
            if self.varlen_route():
                # no packed sequence (a row, or a bin's unused tail) is longer than the longest row
                rows = {"packed_cu_seqlens": torch.tensor(sequence_starts(packing), dtype=torch.int32,
                                                          device=ids.device),
                        "packed_max_length": max(max(packing.lengths), 1), "attention_mask": mask_stand_in(ids.device)}
            with self.accelerator.autocast():
                out = model(input_ids=packed_ids, position_ids=positions, labels=packed_labels, fused_lm_head=True,
                            **rows)
            logps.append(unpack(out.log_probs, packing, width)[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(unpack(out.entropy, packing, width)[:, -logits_to_keep:])
        return torch.cat(logps, dim=0), (torch.cat(entropies, dim=0) if compute_entropy else None), None

    def varlen_route(self) -> bool:
        """Whether packed forwards attend through the variable-length kernel: switched on, and this torch has it."""
        return self.packed_varlen_attention and install_varlen_attention()

    def plan_packed_forward(self, attention_mask: Any) -> Packing:
        """How this trainer packs a micro batch with its switches as they are now."""
        return plan_packing(attention_mask, one_sequence=self.varlen_route() and not self.varlen_in_bins)

    def on_packed_forward(self, padded: int, packed: int) -> None:
        """Called for every forward that builds a gradient, with the tokens TRL's padded layout would
        have run and the tokens the packed one runs (padding at the bins' ends included)."""
