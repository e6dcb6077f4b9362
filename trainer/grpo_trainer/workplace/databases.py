"""The workplace databases: loaded once from the CSVs, copied per rollout.

Every tool call reads and writes a :class:`Databases` object that belongs to one
session, so concurrent rollouts never see each other's writes. The CSVs are
parsed a single time per process; later sessions get copies of that pristine
state, which is far cheaper than re-reading the files.

Tables are kept as lists of plain ``dict`` rows (column order = CSV column
order) rather than DataFrames: the tools touch a handful of rows per call and
plain Python keeps both the per-call cost and the semantics easy to reason about.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
CSV_DIR = DATA_DIR / "nemo_gym" / "csv_data"

# The environment's fixed "now" (NeMo Gym uses 23:59 on the 30th; WorkBench
# used midnight). Sent emails are stamped with it.
CURRENT_TIME = "2023-11-30 23:59:00"

Row = dict[str, Any]

EMAIL_COLUMNS = ("email_id", "inbox/outbox", "sender/recipient", "subject", "sent_datetime", "body")
CALENDAR_COLUMNS = ("event_id", "event_name", "participant_email", "event_start", "duration")
ANALYTICS_COLUMNS = (
    "date_of_visit",
    "visitor_id",
    "page_views",
    "session_duration_seconds",
    "traffic_source",
    "user_engaged",
)
PROJECT_COLUMNS = ("task_id", "task_name", "assigned_to_email", "list_name", "due_date", "board")
CRM_COLUMNS = (
    "customer_id",
    "assigned_to_email",
    "customer_name",
    "customer_email",
    "customer_phone",
    "last_contact_date",
    "product_interest",
    "status",
    "follow_up_by",
    "notes",
)
PLOT_COLUMNS = ("file_path",)


def _read_table(name: str, columns: tuple[str, ...]) -> tuple[Row, ...]:
    # dtype=str keeps ids such as "00000057" and visitor ids such as "0860"
    # intact; only empty cells become missing, exactly as NeMo Gym reads them.
    frame = pd.read_csv(CSV_DIR / "processed" / f"{name}.csv", dtype=str)
    if tuple(frame.columns) != columns:
        raise ValueError(f"{name}.csv has columns {tuple(frame.columns)}, expected {columns}")
    rows: list[Row] = []
    for record in frame.itertuples(index=False, name=None):
        rows.append({col: (None if pd.isna(val) else str(val)) for col, val in zip(columns, record, strict=True)})
    return tuple(rows)


@dataclass(frozen=True)
class PristineData:
    """Read-only initial state, shared by every session in the process."""

    emails: tuple[Row, ...]
    calendar_events: tuple[Row, ...]
    analytics: tuple[Row, ...]
    project_tasks: tuple[Row, ...]
    crm: tuple[Row, ...]
    directory: tuple[str, ...]


@functools.cache
def pristine() -> PristineData:
    """Parse the CSVs once per process."""
    analytics = _read_table("analytics_data", ANALYTICS_COLUMNS)
    for row in analytics:
        # The only non-string column: both upstream projects turn it into a bool.
        row["user_engaged"] = row["user_engaged"] == "True"
    directory_file = CSV_DIR / "raw" / "email_addresses.csv"
    # One address per line, no header row.
    directory = tuple(line.strip() for line in directory_file.read_text().splitlines() if line.strip())
    return PristineData(
        emails=_read_table("emails", EMAIL_COLUMNS),
        calendar_events=_read_table("calendar_events", CALENDAR_COLUMNS),
        analytics=analytics,
        project_tasks=_read_table("project_tasks", PROJECT_COLUMNS),
        crm=_read_table("customer_relationship_manager_data", CRM_COLUMNS),
        directory=directory,
    )


def _copy_rows(rows: tuple[Row, ...]) -> list[Row]:
    # Values are immutable (str, None, bool), so copying each row dict is a
    # full deep copy.
    return [dict(row) for row in rows]


@dataclass
class Databases:
    """One session's mutable copy of the five databases plus the plot log.

    ``analytics`` and ``directory`` are never written by any tool, so they are
    shared with the pristine copy instead of being copied for every rollout.
    """

    emails: list[Row]
    calendar_events: list[Row]
    project_tasks: list[Row]
    crm: list[Row]
    analytics: tuple[Row, ...]
    directory: tuple[str, ...]
    plots: list[str] = field(default_factory=list)

    @classmethod
    def fresh(cls) -> Databases:
        base = pristine()
        return cls(
            emails=_copy_rows(base.emails),
            calendar_events=_copy_rows(base.calendar_events),
            project_tasks=_copy_rows(base.project_tasks),
            crm=_copy_rows(base.crm),
            analytics=base.analytics,
            directory=base.directory,
        )
