"""Decoding attention that reads the grouped key/value heads as they are cached (issue #15, Change 7).

SmolLM2-135M has 9 query heads sharing 3 key/value heads. For a one-token query, transformers' SDPA
path folds each group's query heads into the query-length axis (`pack_gqa`), so attention reads the
cache once, but only when it is *not* being compiled. In the compiled decoding step of
training/compiled_generation.py it repeats the 3 cached heads to 9 (`repeat_kv`) instead: every
decoding step writes the whole static cache out three times as large and reads it back, about 7x the
cache bytes the step needs (docs/benchmarks.md, Change 1: 18.5 GB a step at 64 rows and 1,792 tokens).

`sdpa_grouped_decode` is the SDPA path with that fold also under compilation. It is registered through
transformers' public extension points (`AttentionInterface` for the attention, `AttentionMaskInterface`
for its mask, which is SDPA's own) and used only while `generate` runs (`grouped_decode_attention`):
every call with more than one query token (prefill, scoring, training) goes to transformers' SDPA
function unchanged, and the model's configured implementation is put back afterwards, so checkpoints
and training never see the name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NAME = "sdpa_grouped_decode"


def grouped_decode_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                        scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """Attention for (batch, heads, 1, dim) queries over (batch, kv_heads, length, dim) keys and values."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    per_head_mask = attention_mask is not None and attention_mask.shape[1] != 1
    if query.shape[2] != 1 or groups == 1 or per_head_mask or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, heads, _, dim = query.shape
    # Query head h uses key/value head h // groups (as repeat_kv lays them out), so the heads of one group
    # become that key/value head's rows of queries; a mask shared by all heads broadcasts over them.
    folded = query.reshape(batch, heads // groups, groups, dim)
    out = torch.nn.functional.scaled_dot_product_attention(folded, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling)
    return out.reshape(batch, heads, 1, value.shape[-1]).transpose(1, 2).contiguous(), None


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, grouped_decode_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)


@contextmanager
def grouped_decode_attention(model: Any, enabled: bool = True) -> Iterator[bool]:
    """Decode with `sdpa_grouped_decode` inside the block when the model runs SDPA with grouped heads;
    yields whether it does. The model's own implementation is back after the block."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    if not enabled or current != "sdpa" or not heads or heads == kv_heads:
        yield False
        return
    register()
    model.set_attn_implementation(NAME)
    try:
        yield True
    finally:
        model.set_attn_implementation(current)
