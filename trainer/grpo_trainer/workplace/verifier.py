"""Outcome-based reward: same final databases as the ground truth, or nothing.

Following NeMo Gym's ``verify`` (itself WorkBench's ``is_correct``): the
predicted calls and the ground-truth calls are each replayed on fresh databases,
failing calls are skipped, and the two final states are compared. Text values
are compared case-insensitively except ``status``, ``list_name`` and ``board``,
whose exact spelling the tools rely on. Rows are compared as unordered
multisets, so the order of independent writes (e.g. two plots) does not matter.

The ground truth's final state is cached per ground-truth list, so a group of
rollouts for the same task pays for the ground-truth replay once.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from grpo_trainer.workplace.session import TableState, WorkplaceSession, WorkplaceState

CASE_SENSITIVE_COLUMNS = frozenset({"status", "list_name", "board"})

# Per table: (name, columns, multiset of normalised rows as (row, count) pairs).
NormalizedTable = tuple[str, tuple[str, ...], frozenset[tuple[tuple[Any, ...], int]]]
NormalizedState = tuple[NormalizedTable, ...]

Call = Mapping[str, Any]
Calls = Iterable[Call] | str


def _fold(column: str, value: Any) -> Any:
    if column in CASE_SENSITIVE_COLUMNS:
        # Kept as is, but made hashable: a model may have stored a list here.
        return value if value is None or isinstance(value, (str, int, float)) else repr(value)
    if isinstance(value, str):
        return value.lower()
    # Gym lower-cases with pandas' .str.lower(), which turns every non-string
    # into a missing value; mirror that so the rules cannot disagree.
    return None


def _fold_row(columns: tuple[str, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_fold(col, val) for col, val in zip(columns, row, strict=True))


_cached_fold_row = functools.lru_cache(maxsize=1 << 16)(_fold_row)


def _fold_rows(table: TableState) -> Counter[tuple[Any, ...]]:
    rows: Counter[tuple[Any, ...]] = Counter()
    for row in table.rows:
        # Rows repeat across sessions (most are untouched pristine rows), so
        # folding is memoised; rows holding unhashable values skip the cache.
        try:
            rows[_cached_fold_row(table.columns, row)] += 1
        except TypeError:
            rows[_fold_row(table.columns, row)] += 1
    return rows


def _normalize_table(name: str, table: TableState) -> NormalizedTable:
    pristine_table, pristine_norm = _pristine_tables().get(name, (None, None))
    if pristine_norm is not None and table == pristine_table:
        return pristine_norm  # the common case: this table was not written
    return name, table.columns, frozenset(_fold_rows(table).items())


@functools.cache
def _pristine_tables() -> dict[str, tuple[TableState, NormalizedTable]]:
    tables = WorkplaceSession().snapshot().tables()
    return {name: (t, (name, t.columns, frozenset(_fold_rows(t).items()))) for name, t in tables.items()}


def normalize(state: WorkplaceState) -> NormalizedState:
    return tuple(_normalize_table(name, table) for name, table in state.tables().items())


def states_equal(a: WorkplaceState, b: WorkplaceState) -> bool:
    return normalize(a) == normalize(b)


def _as_call_list(calls: Calls) -> list[Call]:
    # Gym accepts ground truth either as a list or as its JSON text.
    if isinstance(calls, str):
        calls = json.loads(calls)
    return list(calls)


def replay(calls: Calls) -> WorkplaceSession:
    """Run ``calls`` ({name, arguments}) on fresh databases, ignoring failures."""
    session = WorkplaceSession()
    for item in _as_call_list(calls):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str):
            continue  # malformed entries are skipped like any failing call
        session.call(name, item.get("arguments", "{}"))
    return session


def _cache_key(calls: Calls) -> str:
    canonical = []
    for item in _as_call_list(calls):
        if isinstance(item, Mapping):
            arguments = item.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, sort_keys=True)
            canonical.append({"name": item.get("name"), "arguments": arguments})
        else:
            canonical.append({"name": None, "arguments": repr(item)})
    return json.dumps(canonical, sort_keys=True)


@functools.lru_cache(maxsize=8192)
def _ground_truth_state(key: str) -> NormalizedState:
    return normalize(replay(json.loads(key)).snapshot())


@functools.cache
def _pristine_state() -> NormalizedState:
    return tuple(norm for _, norm in _pristine_tables().values())


def ground_truth_state(ground_truth_calls: Calls) -> NormalizedState:
    """Normalised final state of the ground truth (cached)."""
    return _ground_truth_state(_cache_key(ground_truth_calls))


def reward_for_session(session: WorkplaceSession, ground_truth_calls: Calls) -> float:
    """Reward of a finished rollout, using its live state instead of a replay.

    Equivalent to ``reward(session.calls, ground_truth_calls)`` because the
    session logs every attempted call and the tools are deterministic.
    """
    return 1.0 if normalize(session.snapshot()) == ground_truth_state(ground_truth_calls) else 0.0


def reward(predicted_calls: Calls, ground_truth_calls: Calls) -> float:
    return reward_for_session(replay(predicted_calls), ground_truth_calls)


def writes_state(ground_truth_calls: Calls) -> bool:
    """Whether the ground truth changes anything (as the verifier sees it)."""
    return ground_truth_state(ground_truth_calls) != _pristine_state()
