"""Attention over packed rows that computes only each row's own causal triangle (issue #15, Change 8).

With `policy.packed_sequences` (Change 5) a training forward runs on sequences that hold several rows
end to end, each restarting its positions. transformers keeps each row's attention to itself by
building a dense block-diagonal mask, and SDPA with a dense mask cannot use its flash kernel: it runs
the memory-efficient kernel over every packed sequence's full square, most of it masked out.

`packed_varlen_sdpa` hands the same attention to torch's variable-length flash attention
(`torch.nn.attention.varlen.varlen_attn`), given where each row starts (`packed_cu_seqlens`, from
packed_sequences.sequence_starts, passed with the packed forward), with the grouped key/value heads as
they are. `install` puts it under transformers' own "sdpa" name through the public `AttentionInterface`:
a call without the row starts (generation, scoring of padded rows, anything but a packed forward with the
switch on) is transformers' SDPA function, unchanged. It is installed for the process rather than
switched on around each forward because activation checkpointing recomputes a layer's forward during
the backward, outside anything wrapped around the forward, and the recomputation must take the same
route. The model's configuration is never touched, so checkpoints are as before.

The flash kernel exists only on CUDA. Elsewhere the same attention runs one row at a time through
SDPA's causal path: slower, and there so the route is the same on every device.
"""

from __future__ import annotations

import inspect
from typing import Any

# torch's varlen_attn changed keywords across releases (is_causal -> window_size; enable_gqa and scale
# added): the ones this torch has, read once when installing, not inside a traced forward.
_KERNEL_KEYWORDS: set[str] = set()


def packed_varlen_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                       scaling: float | None = None, packed_cu_seqlens: Any = None,
                       packed_max_length: int | None = None, **kwargs: Any) -> tuple[Any, None]:
    """(bins, heads, length, dim) queries over (bins, kv_heads, length, dim) keys and values whose rows start
    at `packed_cu_seqlens` in the bins laid end to end; returns (bins, length, heads, dim) as SDPA's does."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if packed_cu_seqlens is None or query.shape[2] != key.shape[2]:  # not a packed forward (those have no cache)
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if dropout:  # the packed forward's mask is only a stand-in (mask_stand_in): SDPA cannot take over
        raise RuntimeError(f"policy.packed_varlen_attention: this model's attention applies dropout {dropout} in "
                           "training, which the variable-length kernel cannot; switch it off for this model")
    bins, heads, length, dim = query.shape
    tokens = bins * length
    q = query.transpose(1, 2).reshape(tokens, heads, dim)
    k = key.transpose(1, 2).reshape(tokens, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(tokens, value.shape[1], value.shape[-1])
    longest = packed_max_length or length
    if q.is_cuda:
        out = _flash_varlen(q, k, v, packed_cu_seqlens, longest, scaling)
    else:
        out = _causal_by_row(q, k, v, packed_cu_seqlens, scaling)
    return out.reshape(bins, length, heads, value.shape[-1]), None


def mask_stand_in(device: Any) -> Any:
    """What a packed forward passes as its attention mask when the row starts carry the mask: transformers returns
    a 4D mask as it is, so it does not build the (tokens x tokens) one for packed position ids, which grows with
    the square of the micro batch (one sequence of 64 rows of 1,200 tokens: 5.9 GB) and which this route never
    reads."""
    import torch

    return torch.zeros((1, 1, 0, 0), dtype=torch.bool, device=device)


def _flash_varlen(q: Any, k: Any, v: Any, starts: Any, longest: int, scale: float | None) -> Any:
    from torch.nn.attention.varlen import varlen_attn

    options: dict[str, Any] = {}
    if "window_size" in _KERNEL_KEYWORDS:
        options["window_size"] = (-1, 0)  # everything before a token in its row, nothing after: causal
    else:
        options["is_causal"] = True
    groups = q.shape[1] // k.shape[1]
    if groups > 1 and "enable_gqa" in _KERNEL_KEYWORDS:
        options["enable_gqa"] = True
    elif groups > 1:  # query head h reads key/value head h // groups, as transformers' repeat_kv lays them out
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    if "scale" in _KERNEL_KEYWORDS:
        options["scale"] = scale
    elif scale is not None and abs(scale - q.shape[-1] ** -0.5) > 1e-9:
        raise RuntimeError(f"this torch's varlen_attn takes no scale, and the model's ({scale}) is not "
                           "1/sqrt(head_dim)")
    return varlen_attn(q, k, v, starts, starts, longest, longest, **options)


def _causal_by_row(q: Any, k: Any, v: Any, starts: Any, scale: float | None) -> Any:
    import torch

    bounds = starts.tolist()
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            out = torch.nn.functional.scaled_dot_product_attention(
                q[a:b].transpose(0, 1), k[a:b].transpose(0, 1), v[a:b].transpose(0, 1), is_causal=True, scale=scale,
                enable_gqa=q.shape[1] != k.shape[1])
            rows.append(out.transpose(0, 1))
    return torch.cat(rows, dim=0)


def available() -> bool:
    """torch has had varlen_attn since 2.9 (the lock pins a newer one); an older torch keeps the block mask."""
    import importlib.util

    return importlib.util.find_spec("torch.nn.attention.varlen") is not None


def install() -> bool:
    """Route transformers' "sdpa" attention through `packed_varlen_sdpa` in this process (idempotent);
    False, and nothing changed, where torch has no varlen_attn."""
    if not available():
        return False
    from torch.nn.attention import varlen
    from transformers import AttentionInterface

    if not _KERNEL_KEYWORDS:
        _KERNEL_KEYWORDS.update(inspect.signature(varlen.varlen_attn).parameters)
    AttentionInterface.register("sdpa", packed_varlen_sdpa)
    return True
