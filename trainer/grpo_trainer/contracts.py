"""The facts the trainer shares with the pipeline, read from `<repo>/contracts/`.

Those files are the only copy (contracts/README.md says who writes and reads
each); the trainer runs from the checkout (`PYTHONPATH=<repo>/trainer`, Ray
workers included), so the directory is found relative to this package rather
than installed with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"


def path(name: str) -> Path:
    return CONTRACTS_DIR / name


def load(name: str) -> dict[str, Any]:
    """One contract file, parsed (a fresh dict on every call: callers may keep or change it)."""
    data = json.loads(path(name).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path(name)}: expected a JSON object at the top level")
    return data
