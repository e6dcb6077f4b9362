"""Web analytics toolkit: per-day aggregates, visitor look-up and plots.

Date bounds are compared as plain strings against ``date_of_visit``
("YYYY-MM-DD"), which is what NeMo Gym's pandas filters do; results map each
day (ascending) to its value. Creating a plot is the only write: the plot's file
path is appended to the session's plot log, which is the analytics "state".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from grpo_trainer.workplace.tools._common import Databases, Row, ToolSpec, require, string, tool

PLOTTABLE_VALUES = (
    "total_visits",
    "session_duration_seconds",
    "user_engaged",
    "visits_direct",
    "visits_referral",
    "visits_search_engine",
    "visits_social_media",
)
PLOT_TYPES = ("bar", "line", "scatter", "histogram")


def _in_range(db: Databases, time_min: str | None, time_max: str | None) -> list[Row]:
    rows = list(db.analytics)
    if time_min:
        rows = [r for r in rows if r["date_of_visit"] >= time_min]
    if time_max:
        rows = [r for r in rows if r["date_of_visit"] <= time_max]
    return rows


def _per_day(rows: list[Row], value: Callable[[list[Row]], Any]) -> dict[str, Any]:
    by_day: dict[str, list[Row]] = {}
    for row in rows:
        by_day.setdefault(row["date_of_visit"], []).append(row)
    return {day: value(by_day[day]) for day in sorted(by_day)}


@tool("analytics_get_visitor_information_by_id", string("visitor_id"))
def get_visitor_information_by_id(db: Databases, visitor_id: str | None) -> list[Row]:
    require(visitor_id, "Visitor ID not provided.")
    visits = [dict(r) for r in db.analytics if r["visitor_id"] == visitor_id]
    require(visits, "Visitor not found.")
    return visits


@tool("analytics_create_plot", string("time_min"), string("time_max"), string("value_to_plot"), string("plot_type"))
def create_plot(
    db: Databases, time_min: str | None, time_max: str | None, value_to_plot: str | None, plot_type: str | None
) -> str:
    require(time_min, "Start date not provided.")
    require(time_max, "End date not provided.")
    require(
        value_to_plot in PLOTTABLE_VALUES,
        "Value to plot must be one of " + ", ".join(f"'{v}'" for v in PLOTTABLE_VALUES),
    )
    require(plot_type in PLOT_TYPES, "Plot type must be one of " + ", ".join(f"'{p}'" for p in PLOT_TYPES))
    # No plot is drawn: the path (which encodes every argument) is the record.
    file_path = f"plots/{time_min}_{time_max}_{value_to_plot}_{plot_type}.png"
    db.plots.append(file_path)
    return file_path


@tool("analytics_total_visits_count", string("time_min"), string("time_max"))
def total_visits_count(db: Databases, time_min: str | None, time_max: str | None) -> dict[str, int]:
    return _per_day(_in_range(db, time_min, time_max), len)


@tool("analytics_engaged_users_count", string("time_min"), string("time_max"))
def engaged_users_count(db: Databases, time_min: str | None, time_max: str | None) -> dict[str, int]:
    return _per_day(_in_range(db, time_min, time_max), lambda day: sum(1 for r in day if r["user_engaged"]))


@tool("analytics_traffic_source_count", string("time_min"), string("time_max"), string("traffic_source"))
def traffic_source_count(
    db: Databases, time_min: str | None, time_max: str | None, traffic_source: str | None
) -> dict[str, int]:
    rows = _in_range(db, time_min, time_max)
    if not traffic_source:
        return _per_day(rows, len)
    # Exact, case-sensitive source match; days without such visits report 0.
    return _per_day(rows, lambda day: sum(1 for r in day if r["traffic_source"] == traffic_source))


@tool("analytics_get_average_session_duration", string("time_min"), string("time_max"))
def get_average_session_duration(db: Databases, time_min: str | None, time_max: str | None) -> dict[str, float]:
    def mean_seconds(day: list[Row]) -> float:
        return math.fsum(float(r["session_duration_seconds"]) for r in day) / len(day)

    return _per_day(_in_range(db, time_min, time_max), mean_seconds)


TOOLS: tuple[ToolSpec, ...] = (
    get_visitor_information_by_id,
    create_plot,
    total_visits_count,
    engaged_users_count,
    traffic_source_count,
    get_average_session_duration,
)
