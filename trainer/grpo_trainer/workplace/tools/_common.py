"""Shared pieces of the tool implementations: specs, errors and helpers.

The helpers reproduce NeMo Gym's matching rules, which come from pandas:
``str.contains(..., case=False)`` is a case-insensitive *regular expression*
search, dates given by the model are parsed with ``pd.Timestamp`` and range
filters on CRM/analytics dates compare plain strings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from grpo_trainer.workplace.databases import Databases, Row


class ToolError(Exception):
    """A call that failed; the session reports it to the model as text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # str or int, as declared in the JSON schema
    default: Any = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    params: tuple[Param, ...]
    func: Callable[..., Any]  # func(db, **arguments)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def matcher(pattern: Any) -> Callable[[Any], bool]:
    """Case-insensitive regex search for ``pattern``; missing values never match.

    Compiled up front so a bad pattern fails even when no row is left to test.
    """
    regex = _compile(pattern)
    return lambda value: isinstance(value, str) and regex.search(value) is not None


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        # NeMo Gym passes the text to pandas as a regex, so an unbalanced "("
        # fails there too.
        raise ToolError(f"invalid search pattern {pattern!r}: {exc}") from None


@functools.lru_cache(maxsize=4096)
def timestamp(text: str) -> pd.Timestamp:
    """``pd.Timestamp(text)``, cached: the same few values recur constantly."""
    return pd.Timestamp(text)


def parse_timestamp(text: str, what: str) -> pd.Timestamp:
    """Parse a date/time the way NeMo Gym does (pd.Timestamp), or fail."""
    try:
        return timestamp(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ToolError(f"could not parse {what} {text!r}: {exc}") from None


def require(condition: Any, message: str) -> None:
    if not condition:
        raise ToolError(message)


def find_row(rows: Sequence[Row], column: str, value: Any) -> Row | None:
    for row in rows:
        if row[column] == value:
            return row
    return None


def remove_rows(rows: list[Row], column: str, value: Any) -> None:
    rows[:] = [row for row in rows if row[column] != value]


def next_id(rows: Iterable[Row], column: str, *, pad: bool) -> str:
    """Next id after the (string-wise) largest one, as NeMo Gym computes it.

    Gym takes ``max()`` over the string column and adds one. New email ids are
    not zero-padded there ("500" after "00000499"); all other tables pad to 8.
    """
    largest = max(row[column] for row in rows)
    new_id = str(int(largest) + 1)
    return new_id.zfill(8) if pad else new_id


def paginate(items: list[Any], page: int, page_size: int, items_key: str, total_key: str) -> dict[str, Any]:
    """Slice one page; out-of-range pages are clamped like NeMo Gym does."""
    require(page_size >= 1, f"page_size must be at least 1, got {page_size}")
    total = len(items)
    total_pages = -(-total // page_size)
    page = max(1, min(page, total_pages)) if total_pages > 0 else 1
    start = (page - 1) * page_size
    return {
        items_key: items[start : start + page_size],
        "pagination": {total_key: total, "page": page, "page_size": page_size, "total_pages": total_pages},
    }


def tool(name: str, *params: Param) -> Callable[[Callable[..., Any]], ToolSpec]:
    """Declare a tool: its public name and the parameters its schema lists."""

    def wrap(func: Callable[..., Any]) -> ToolSpec:
        return ToolSpec(name=name, params=params, func=func)

    return wrap


def string(name: str, default: str | None = None) -> Param:
    """A ``"type": "string"`` parameter; omitted means ``default``."""
    return Param(name, str, default)


def integer(name: str, default: int) -> Param:
    """A ``"type": "integer"`` parameter (page, page_size)."""
    return Param(name, int, default)


__all__ = [
    "Databases",
    "Param",
    "Row",
    "ToolError",
    "ToolSpec",
    "find_row",
    "integer",
    "matcher",
    "next_id",
    "paginate",
    "parse_timestamp",
    "remove_rows",
    "require",
    "string",
    "timestamp",
    "tool",
]
