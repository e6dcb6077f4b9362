"""One rollout's sandbox: fresh databases, tool dispatch, and a call log.

``WorkplaceSession.call`` plays the part of NeMo Gym's resources-server route:
it never raises; every failure (unknown tool, bad JSON, unknown argument, a
missing one the tool refuses to go without, any other refusal, an exception
inside a tool) comes back as the text ``Error executing tool '<name>':
<message>`` so the model can correct itself. ``snapshot`` freezes the five
databases for the verifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from grpo_trainer.workplace.databases import (
    CALENDAR_COLUMNS,
    CRM_COLUMNS,
    EMAIL_COLUMNS,
    PLOT_COLUMNS,
    PROJECT_COLUMNS,
    Databases,
    Row,
)
from grpo_trainer.workplace.tools import TOOLS, ToolError, ToolSpec


@dataclass(frozen=True)
class TableState:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  # in table order, values as stored


@dataclass(frozen=True)
class WorkplaceState:
    """The five comparable databases. Analytics is the log of created plots:
    the visit data itself is read-only, so plots are the only analytics writes.

    ``==`` is exact (row order and case matter); the verifier applies the
    looser NeMo Gym/WorkBench rules.
    """

    email: TableState
    calendar: TableState
    analytics: TableState
    project_management: TableState
    customer_relationship_manager: TableState

    def tables(self) -> dict[str, TableState]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _capture_table(columns: tuple[str, ...], rows: list[Row]) -> TableState:
    return TableState(columns, tuple(tuple(row[c] for c in columns) for row in rows))


def _capture(db: Databases) -> WorkplaceState:
    return WorkplaceState(
        email=_capture_table(EMAIL_COLUMNS, db.emails),
        calendar=_capture_table(CALENDAR_COLUMNS, db.calendar_events),
        analytics=TableState(PLOT_COLUMNS, tuple((path,) for path in db.plots)),
        project_management=_capture_table(PROJECT_COLUMNS, db.project_tasks),
        customer_relationship_manager=_capture_table(CRM_COLUMNS, db.crm),
    )


ERROR_PREFIX = "Error executing tool "


def format_error(name: str, message: str) -> str:
    return f"{ERROR_PREFIX}'{name}': {message}"


def is_error(output: str) -> bool:
    """Whether a string returned by :meth:`WorkplaceSession.call` is an error."""
    return output.startswith(ERROR_PREFIX)


def render(result: Any) -> str:
    """Text shown to the model: strings as they are, data as compact JSON
    (the same content NeMo Gym puts in its ``output`` field)."""
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def _bind(spec: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    # null means "not given": NeMo Gym's route drops None values before the call.
    given = {k: v for k, v in arguments.items() if v is not None}
    unknown = sorted(set(given) - set(spec.param_names))
    if unknown:
        accepted = ", ".join(spec.param_names)
        raise ToolError(f"unexpected argument(s) {', '.join(map(repr, unknown))}; accepted: {accepted}")
    # Values are passed through without type checks, like Gym's plain Python
    # tools: a number where the schema says string is stored as a number (and
    # then never matches a string ground truth), rather than rejected.
    return {p.name: given.get(p.name, p.default) for p in spec.params}


class WorkplaceSession:
    """Fresh copies of the databases plus the ordered log of attempted calls."""

    def __init__(self) -> None:
        self.db = Databases.fresh()
        # Every attempted call, failed ones included, as {name, arguments-JSON}:
        # the same shape as NeMo Gym's function_call items, so replaying the
        # log reproduces this session's state.
        self.calls: list[dict[str, str]] = []

    def call(self, name: str, arguments: dict[str, Any] | str) -> str:
        if isinstance(arguments, str):
            raw = arguments
        else:
            try:
                raw = json.dumps(arguments)
            except (TypeError, ValueError):
                raw = repr(arguments)
        self.calls.append({"name": name, "arguments": raw})
        try:
            return render(self._execute(name, arguments))
        except ToolError as exc:
            return format_error(name, exc.message)
        except Exception as exc:  # a tool bug must not end the episode
            return format_error(name, f"{type(exc).__name__}: {exc}")

    def _execute(self, name: str, arguments: dict[str, Any] | str) -> Any:
        spec = TOOLS.get(name)
        if spec is None:
            raise ToolError("no such tool")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise ToolError(f"arguments are not valid JSON ({exc})") from None
        if not isinstance(arguments, dict):
            raise ToolError("arguments must be a JSON object")
        return spec.func(self.db, **_bind(spec, arguments))

    def snapshot(self) -> WorkplaceState:
        return _capture(self.db)
