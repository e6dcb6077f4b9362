"""Which read calls reveal what a task's ground-truth writes need.

WorkBench's ground truth lists only the final writes. A write argument the user
prompt does not contain (an email id, an event id, a colleague's address, the
name of an event used as a subject) can only be known after a lookup, so a
trace must show a read whose real output contains it before the write.

:func:`plan_lookups` finds such reads without per-template code: for every
unknown value it takes the records of the pristine databases that hold it,
builds candidate reads from those records' own fields (sender, subject,
participant, event name, assignee, list, board, customer name, product, ...),
keeps only candidates whose arguments the model can know (words of the prompt,
dates the prompt refers to, enum values, values shown by an earlier output),
runs them, and greedily takes the one that reveals the most unknown values,
ties going to the shortest output. A candidate whose only unknown argument is
a colleague's address is allowed after a directory lookup of their first name.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from grpo_trainer.workplace.databases import pristine
from grpo_trainer.workplace.schemas import DIRECTORY_TOOL
from grpo_trainer.workplace.session import WorkplaceSession, is_error

TODAY = dt.date(2023, 11, 30)  # the environment's clock (schemas.SYSTEM_PROMPT)
NOW = "2023-11-30 23:59:00"
# WorkBench's clock stood at midnight, so its answers count all of today's meetings as upcoming
# ("cancel my next meeting with sofia" cancels her 14:30 meeting today): reads of what is next or
# future start at midnight for the ground truth to follow from them.
UPCOMING = "2023-11-30 00:00:00"
ID_ARGUMENTS = ("email_id", "event_id", "task_id", "customer_id")
ID_TABLES = {"email_id": "emails", "event_id": "calendar_events", "task_id": "project_tasks", "customer_id": "crm"}
ENUMS = frozenset({
    "Backlog", "In Progress", "In Review", "Completed", "Back end", "Front end", "Design",
    "Qualified", "Won", "Lost", "Lead", "Proposal", "Software", "Hardware", "Services", "Consulting", "Training",
    "direct", "referral", "search engine", "social media",
    "total_visits", "session_duration_seconds", "user_engaged", "visits_direct", "visits_referral",
    "visits_search_engine", "visits_social_media", "bar", "line", "scatter", "histogram",
})
# Argument names whose values are field names or free choices, never facts to look up.
FREE_ARGUMENTS = frozenset({"field", "page", "page_size", "plot_type", "value_to_plot", "traffic_source"})
PAGE_SIZES = (None, 10, 20, 50)  # None: the tool's default (5)
MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$")
_MONTH_DAY = re.compile(r"\b(" + "|".join(MONTHS) + r")\s+(\d{1,2})\b")


def is_date(value: str) -> bool:
    return bool(_DATE.match(value))


def past_weekday(name: str, today: dt.date = TODAY) -> dt.date:
    """The most recent `name` before today (a week ago when today is that day)."""
    back = (today.weekday() - WEEKDAYS.index(name)) % 7 or 7
    return today - dt.timedelta(days=back)


def next_weekday(name: str, today: dt.date = TODAY) -> dt.date:
    ahead = (WEEKDAYS.index(name) - today.weekday()) % 7 or 7
    return today + dt.timedelta(days=ahead)


def prompt_dates(text: str) -> set[str]:
    """Days the prompt refers to: named days, ISO dates, weekdays, 'last N days/weeks', 'tomorrow', ..."""
    q = text.lower()
    days: set[dt.date] = set()
    for month, day in _MONTH_DAY.findall(q):
        try:
            days.add(dt.date(2023, MONTHS[month], int(day)))
        except ValueError:
            pass
    for iso in re.findall(r"\b(\d{4}-\d{2}-\d{2})\b", q):
        try:
            days.add(dt.date.fromisoformat(iso))
        except ValueError:
            pass
    for name in WEEKDAYS:
        if re.search(rf"\b{name}\b", q):
            past, upcoming = past_weekday(name), next_weekday(name)
            days |= {past, past - dt.timedelta(days=7), upcoming, upcoming + dt.timedelta(days=7)}
    for n, unit in re.findall(r"\b(?:last|past|next)\s+(\d+)\s+(day|week)s?\b", q):
        span = dt.timedelta(days=int(n) * (7 if unit == "week" else 1))
        days |= {TODAY - span, TODAY + span}
    if "fortnight" in q:
        days.add(TODAY - dt.timedelta(days=14))
    if "last week" in q:
        monday = TODAY - dt.timedelta(days=TODAY.weekday() + 7)
        days |= {monday, monday + dt.timedelta(days=6)}
    if re.search(r"\btoday\b", q):
        days.add(TODAY)
    if "tomorrow" in q:
        days.add(TODAY + dt.timedelta(days=1))
    return {d.isoformat() for d in days}


def _forms(value: str) -> tuple[str, ...]:
    """How a text value can appear inside a rendered tool output (raw or JSON-escaped), lower-cased."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    return tuple({value.lower(), escaped.lower()})


def shows(output: str, value: str, key: str | None = None) -> bool:
    """Whether ``output`` reveals ``value``; an id only as the id of its own table's record
    (ids of different tables overlap: task 00000206 is not email 00000206)."""
    if key in ID_ARGUMENTS:
        return f'"{key}":"{value}"' in output
    low = output.lower()
    return any(form in low for form in _forms(value))


@dataclass
class Knowledge:
    """What the model can know at a point of the trace: the prompt, its dates, earlier outputs."""

    prompt: str
    dates: set[str] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, prompt: str) -> Knowledge:
        return cls(prompt=prompt, dates=prompt_dates(prompt))

    def in_prompt(self, value: str) -> bool:
        # A line break the prompt spells as backslash-n is the same text once written in JSON.
        low = self.prompt.lower()
        return value.lower() in low or value.replace("\n", "\\n").lower() in low

    def knows(self, key: str, value: Any) -> bool:
        if not isinstance(value, str) or key in FREE_ARGUMENTS or value in ENUMS:
            return True
        if value == "" or self.in_prompt(value) or any(shows(o, value) for o in self.outputs):
            return True
        if key == "query" and " " in value.strip():
            # search_emails wants every word somewhere, in any order: each must be known.
            return all(self.knows(key, word) for word in value.split())
        return is_date(value) and value[:10] in self.dates

    def unknown_args(self, args: dict[str, Any]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in args.items() if not self.knows(k, v)]


def needed_values(writes: Iterable[tuple[str, dict[str, Any]]], knowledge: Knowledge) -> list[tuple[str, str]]:
    """(argument, value) pairs of the writes that the prompt does not give: these need a lookup.

    Dates and times are taken as derivable (from the prompt's clock, or from a
    looked-up record, e.g. a meeting pushed back by two hours); enums,
    numbers and field names are choices, not facts.
    """
    needed: list[tuple[str, str]] = []
    for _, args in writes:
        for key, value in args.items():
            if not isinstance(value, str) or (key, value) in needed:
                continue
            if key in ID_ARGUMENTS:
                if not knowledge.in_prompt(value):
                    needed.append((key, value))
            elif not (knowledge.knows(key, value) or is_date(value) or value.isdigit()):
                needed.append((key, value))
    return needed


# ---------------------------------------------------------------- candidates

def _first_name(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.split("@")[0].split(".")[0]


def _dedupe(calls: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    seen: set[str] = set()
    for name, args in calls:
        args = {k: v for k, v in args.items() if v is not None}
        key = name + json.dumps(args, sort_keys=True)
        if key not in seen:
            seen.add(key)
            yield name, args


def _paged(name: str, args: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for size in PAGE_SIZES:
        yield name, {**args, "page_size": size}


def _email_candidates(row: dict[str, Any], dates: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    address, subject, day = row["sender/recipient"], row["subject"], row["sent_datetime"][:10]
    first = _first_name(address)
    queries = [q for q in (first, address, subject, f"{first} {subject}" if first and subject else None) if q]
    bounds: list[dict[str, Any]] = [{}]
    bounds += [{"date_min": d} for d in sorted(dates) if d <= day]
    bounds += [{"date_min": lo, "date_max": hi} for lo in sorted(dates) for hi in sorted(dates) if lo <= day <= hi]
    for query, bound in itertools.product(queries, bounds):
        yield from _paged("email_search_emails", {"query": query, **bound})


def _event_candidates(row: dict[str, Any], dates: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    address, name, start = row["participant_email"], row["event_name"], row["event_start"]
    day = start[:10]
    queries = [q for q in (_first_name(address), address, name) if q]
    bounds: list[dict[str, Any]] = [{}]
    if start >= UPCOMING:
        bounds.append({"time_min": UPCOMING})
    bounds += [{"time_min": f"{d} 00:00:00"} for d in sorted(dates) if d <= day]
    if day in dates:
        day_bounds = {"time_min": f"{day} 00:00:00", "time_max": f"{day} 23:59:59"}
        bounds.append(day_bounds)
        yield from _paged("calendar_search_events", day_bounds)  # everything on that day
    for query, bound in itertools.product(queries, bounds):
        yield from _paged("calendar_search_events", {"query": query, **bound})


def _task_candidates(row: dict[str, Any], dates: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    fields = {"task_name": row["task_name"], "assigned_to_email": row["assigned_to_email"],
              "list_name": row["list_name"], "board": row["board"]}
    if row["due_date"] in dates:
        fields["due_date"] = row["due_date"]
    keys = list(fields)
    for size in (1, 2, 3):
        for combo in itertools.combinations(keys, size):
            yield "project_management_search_tasks", {k: fields[k] for k in combo}


def _customer_candidates(row: dict[str, Any], dates: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from _paged("customer_relationship_manager_search_customers", {"customer_name": row["customer_name"]})
    address = row["assigned_to_email"]
    owners = [a for a in (_first_name(address), address) if a]
    for owner in owners:
        for extra in ({}, {"product_interest": row["product_interest"]}, {"status": row["status"]},
                      {"product_interest": row["product_interest"], "status": row["status"]}):
            yield from _paged("customer_relationship_manager_search_customers", {"assigned_to_email": owner, **extra})
    for extra in ({"product_interest": row["product_interest"], "status": row["status"]},):
        yield from _paged("customer_relationship_manager_search_customers", extra)


_TABLES = {
    "emails": _email_candidates,
    "calendar_events": _event_candidates,
    "project_tasks": _task_candidates,
    "crm": _customer_candidates,
}


def _records_holding(key: str, value: str) -> Iterator[tuple[str, dict[str, Any]]]:
    data = pristine()
    if key in ID_TABLES:
        table = ID_TABLES[key]
        for row in getattr(data, table):
            if row[key] == value:
                yield table, row
        return
    low = value.lower()
    for table in _TABLES:
        for row in getattr(data, table):
            if any(isinstance(v, str) and v.lower() == low for v in row.values()):
                yield table, row


def candidates_for(key: str, value: str, dates: set[str]) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    if "@" in value and value.lower() in (a.lower() for a in pristine().directory):
        first = _first_name(value)
        calls += [(DIRECTORY_TOOL, {"name": first}), (DIRECTORY_TOOL, {"name": value.split("@")[0]})]
    for table, row in _records_holding(key, value):
        calls += list(_TABLES[table](row, dates))
    return list(_dedupe(calls))


# ---------------------------------------------------------------- execution

_OUTPUTS: dict[str, str] = {}
_EMPTY = ("No emails found.", "No events found.", "No customers found.", "[]")


def read(name: str, args: dict[str, Any]) -> str:
    """Output of a read call on the pristine databases (cached: reads never write)."""
    key = name + json.dumps(args, sort_keys=True)
    if key not in _OUTPUTS:
        _OUTPUTS[key] = WorkplaceSession().call(name, args)
    return _OUTPUTS[key]


def useful(output: str) -> bool:
    return not is_error(output) and output not in _EMPTY


@dataclass
class Lookup:
    name: str
    arguments: dict[str, Any]
    output: str
    purpose: str  # "condition", "context", "lookup" or "directory"


class PlanError(Exception):
    """No knowable read reveals a value a write needs (the message says which)."""


def _directory_enablers(unknown: list[tuple[str, str]], knowledge: Knowledge,
                        tools: set[str]) -> list[Lookup] | None:
    """Directory lookups that make the unknown arguments (all addresses of colleagues) known, or None."""
    if DIRECTORY_TOOL not in tools:
        return None
    enablers: list[Lookup] = []
    for _, value in unknown:
        first = _first_name(value)
        if not first or not knowledge.in_prompt(first):
            return None
        output = read(DIRECTORY_TOOL, {"name": first})
        if not shows(output, value):
            return None
        enablers.append(Lookup(DIRECTORY_TOOL, {"name": first}, output, "directory"))
    return enablers


def plan_lookups(needed: list[tuple[str, str]], knowledge: Knowledge, tools: set[str],
                 max_rounds: int = 12) -> list[Lookup]:
    """Reads (in order) whose outputs reveal every needed value; extends ``knowledge.outputs``."""
    plan: list[Lookup] = []

    def uncovered_values() -> list[tuple[str, str]]:
        return [(k, v) for k, v in needed if not any(shows(o, v, k) for o in knowledge.outputs)]

    # A colleague the prompt names is looked up in the directory, the tool for exactly that.
    for key, value in uncovered_values():
        if "@" in value and (enablers := _directory_enablers([(key, value)], knowledge, tools)):
            plan += enablers
            knowledge.outputs += [e.output for e in enablers]
    for _ in range(max_rounds):
        uncovered = uncovered_values()
        if not uncovered:
            return plan
        best: tuple[tuple[int, int], list[Lookup]] | None = None
        seen: set[str] = set()
        for key, value in uncovered:
            for name, args in candidates_for(key, value, knowledge.dates):
                sig = name + json.dumps(args, sort_keys=True)
                if name not in tools or sig in seen:
                    continue
                seen.add(sig)
                output = read(name, args)
                if not useful(output):
                    continue
                covered = sum(1 for k, v in uncovered if shows(output, v, k))
                if not covered:
                    continue
                unknown = knowledge.unknown_args(args)
                steps = [Lookup(name, args, output, "lookup")]
                if unknown:
                    enablers = _directory_enablers(unknown, knowledge, tools)
                    if enablers is None:
                        continue
                    steps = enablers + steps
                # Most values revealed first, then fewest calls, then the shortest outputs.
                score = (covered * 100 - len(steps), -sum(len(s.output) for s in steps))
                if best is None or score > best[0]:
                    best = (score, steps)
        if best is None:
            key, value = uncovered[0]
            raise PlanError(f"{key}: not in the prompt and no lookup reveals it")
        for step in best[1]:
            plan.append(step)
            knowledge.outputs.append(step.output)
    raise PlanError("too many lookups")
