"""Command-line options of `python -m grpo_trainer bfcl` (stdlib only: parsed in every environment)."""

from __future__ import annotations

import argparse

from . import DEFAULT_CATEGORIES


def parse_limits(text: str | None) -> dict[str, int]:
    """`simple=20,multi_turn_base=3` -> {"simple": 20, "multi_turn_base": 3}."""
    limits: dict[str, int] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected CATEGORY=N, got {item!r}")
        limits[name.strip()] = int(value)
    return limits


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="checkpoint_dir/step_N, an HF model dir, or an export (grpo_trainer export)")
    p.add_argument("--out", required=True, help="output dir: bfcl.json, bfcl-eval's result/ and score/ files, logs")
    p.add_argument("--trainer-python", default=None,
                   help="python of the trainer environment (torch, transformers): exports the model and serves it")
    p.add_argument("--server-url", default=None,
                   help="use this running OpenAI-compatible server (http://host:port) instead of starting one")
    p.add_argument("--categories", default=",".join(DEFAULT_CATEGORIES),
                   help="comma-separated BFCL v3 categories (bfcl-eval names)")
    p.add_argument("--limit", type=int, default=20, help="entries per category (evenly spaced); 0 = all")
    p.add_argument("--limit-for", type=parse_limits, default={},
                   help="per-category overrides, e.g. multi_turn_base=3")
    p.add_argument("--temperature", type=float, default=0.001, help="bfcl-eval's default; <=0.01 decodes greedily")
    p.add_argument("--max-tokens", type=int, default=128, help="cap on new tokens per model call (server side)")
    p.add_argument("--prefill-tool-call", action=argparse.BooleanOptionalAction, default=False,
                   help="start the first assistant turn with the <tool_call> opener, as in training")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads of the server")
    p.add_argument("--label", default=None, help="name shown in the report (e.g. baseline, final)")
    p.add_argument("--server-timeout", type=int, default=600, help="seconds to wait for the server to start")
