"""Reads a query asks for that its writes' arguments do not reveal.

The id-driven planner (:mod:`trace_lookups`) finds the reads that reveal the
values a write needs. Two kinds of reads are invisible to it:

* condition checks ("if total visits was less than 3 since ...", "if I haven't
  met with aisha in the last 4 days", "if kofi has any overdue tasks"): they
  decide whether to write at all, and they are the whole trace when the
  answer is "no";
* context reads (the first free slot tomorrow; the set of records a bulk
  request selects, e.g. all of yuki's in-progress tasks), which must be shown
  even when the set turns out empty.

Each recipe below recognises one phrasing family of the WorkBench queries by
regular expressions and returns the reads, built only from what the query
says. :func:`needs_condition` tells queries whose writes depend on data (they
are traced only when some condition recipe matched).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from grpo_trainer.data.trace_lookups import (
    MONTHS,
    TODAY,
    UPCOMING,
    WEEKDAYS,
    Lookup,
    past_weekday,
    read,
)
from grpo_trainer.workplace.databases import pristine
from grpo_trainer.workplace.schemas import DIRECTORY_TOOL

Call = tuple[str, dict[str, Any], str]  # name, arguments, purpose ("condition" or "context")

METRICS = {
    "total visits": ("analytics_total_visits_count", {}),
    "session duration": ("analytics_get_average_session_duration", {}),
    "engaged users": ("analytics_engaged_users_count", {}),
}
SOURCES = ("direct", "referral", "search engine", "social media")
PRODUCTS = ("software", "hardware", "services", "consulting", "training")
STATUSES = {"qualified": "Qualified", "won": "Won", "lost": "Lost", "lead": "Lead", "proposal": "Proposal"}
_METRIC = re.compile(r"total visits|session duration|engaged users")
_CONDITION = re.compile(
    r"\bif\b|\bcheck\b|\bwhether\b|\bdid (?:i|we)\b|fewest|most completed|popular|\bgrew\b"
)
PAGE_STEPS = (5, 10, 20, 50)


def needs_condition(query: str) -> bool:
    """Whether what to write depends on data the query asks to check."""
    return bool(_CONDITION.search(query.lower()))


def _day(text: str) -> dt.date | None:
    """'november 21', '2023-11-05' or a weekday (its most recent past occurrence)."""
    text = text.strip()
    m = re.match(r"(\d{4}-\d{2}-\d{2})", text)
    if m:
        return dt.date.fromisoformat(m.group(1))
    m = re.match(r"(" + "|".join(MONTHS) + r")\s+(\d{1,2})", text)
    if m:
        return dt.date(2023, MONTHS[m.group(1)], int(m.group(2)))
    m = re.match(r"(" + "|".join(WEEKDAYS) + r")", text)
    if m:
        return past_weekday(m.group(1))
    return None


_DAY_WORDS = r"(\d{4}-\d{2}-\d{2}|(?:" + "|".join(MONTHS) + r")\s+\d{1,2}|" + "|".join(WEEKDAYS) + r")"


def _analytics_range(q: str) -> tuple[str, str] | None:
    m = re.search(rf"\b(?:on|from)\s+{_DAY_WORDS}\b.*\bprevious\s+{_DAY_WORDS}", q)
    if m and m.group(1) in WEEKDAYS:
        later = past_weekday(m.group(1))
        return (later - dt.timedelta(days=7)).isoformat(), later.isoformat()
    m = re.search(r"\b(?:last|past)\s+(\d+)\s+weeks?\b", q)
    if m:
        return (TODAY - dt.timedelta(weeks=int(m.group(1)))).isoformat(), TODAY.isoformat()
    m = re.search(rf"\b(?:since|than|from)\s+(?:it was on\s+|at any time\s+)?{_DAY_WORDS}", q)
    if m:
        start = _day(m.group(1))
        return (start.isoformat(), TODAY.isoformat()) if start else None
    return None


def analytics_conditions(q: str) -> list[Call]:
    """Metric or traffic-source reads over the period a data-dependent analytics condition names."""
    if not needs_condition(q):
        return []
    span = _analytics_range(q)
    if span is None:
        return []
    bounds = {"time_min": span[0], "time_max": span[1]}
    calls: list[Call] = []
    if "popular" in q and "traffic source" in q:
        return [("analytics_traffic_source_count", {**bounds, "traffic_source": s}, "condition") for s in SOURCES]
    if "traffic from" in q:
        named = sorted((q.index(s), s) for s in SOURCES if re.search(rf"traffic from {s}|than {s}|{s} than", q))
        return [("analytics_traffic_source_count", {**bounds, "traffic_source": s}, "condition") for _, s in named]
    for metric in dict.fromkeys(_METRIC.findall(q)):
        name, extra = METRICS[metric]
        calls.append((name, {**bounds, **extra}, "condition"))
        if not re.search(r"\bgrew\b|percent growth", q):
            break  # a threshold or growth check reads one metric; "grew by more than <metric>" reads two
    return calls


def _names(q: str) -> list[str]:
    """Colleagues' first names in the query, in order of appearance."""
    firsts = {a.split("@")[0].split(".")[0] for a in pristine().directory}
    found = [(m.start(), m.group(0)) for f in firsts for m in re.finditer(rf"\b{re.escape(f)}\b", q)]
    return [name for _, name in sorted(found)]


def _address(first: str) -> str | None:
    matches = [a for a in pristine().directory if a.split("@")[0].split(".")[0] == first]
    return matches[0] if len(matches) == 1 else None


def _at(day: dt.date, end: bool = False) -> str:
    return f"{day.isoformat()} {'23:59:59' if end else '00:00:00'}"


def calendar_and_email(q: str) -> list[Call]:
    names = _names(q)
    calls: list[Call] = []
    days = re.search(r"\b(?:last|past|next|longer than|over)\s+(\d+)\s+days?\b", q)
    who = names[0] if names else ""
    # WorkBench's clock stood at midnight: "the last N days" ends there and today's meetings are upcoming.
    if names and days and re.search(rf"\bmet with (?:{who}|them)\b|\bmeetings? (?:scheduled )?with {who}\b", q):
        n = int(days.group(1))
        if re.search(r"\bnext\s+\d+\s+days?\b", q):
            bounds = {"time_min": UPCOMING, "time_max": _at(TODAY + dt.timedelta(days=n), end=True)}
        else:
            bounds = {"time_min": _at(TODAY - dt.timedelta(days=n)), "time_max": UPCOMING}
        calls.append(("calendar_search_events", {"query": who, **bounds}, "condition"))
    if names and days and re.search(r"sent me|emails? from", q):
        start = (TODAY - dt.timedelta(days=int(days.group(1)))).isoformat()
        purpose = "condition" if "sent me" in q else "context"
        calls.append(("email_search_emails", {"query": names[0], "date_min": start}, purpose))
    if names and re.search(r"\b(?:all )?future meetings with\b|\bnext meeting with\b", q):
        calls.append(("calendar_search_events", {"query": names[0], "time_min": UPCOMING}, "context"))
    m = re.search(r"\bmeetings on (" + "|".join(WEEKDAYS) + r")\b.*\b(?:before|after)\b", q)
    if m:
        day = TODAY + dt.timedelta(days=(WEEKDAYS.index(m.group(1)) - TODAY.weekday()) % 7 or 7)
        calls.append(("calendar_search_events", {"time_min": _at(day), "time_max": _at(day, end=True)}, "context"))
    m = re.search(r"\bfuture (.+?) meetings\b|\bany more (.+?) meetings\b", q)
    if m and not names:
        title = (m.group(1) or m.group(2)).strip()
        title = re.sub(r"^(?:all the |the |any )", "", title)
        calls.append(("calendar_search_events", {"query": title, "time_min": UPCOMING}, "context"))
    if re.search(r"free.*tomorrow|first free slot|first time i can do tomorrow", q):
        tomorrow = TODAY + dt.timedelta(days=1)
        calls.append(("calendar_search_events", {"time_min": _at(tomorrow), "time_max": _at(tomorrow, end=True)},
                      "context"))
    return calls


_QUOTED = re.compile(r"(?:(?<=\s)|^)'[^']*'(?=[\s.,?!]|$)")


def tasks(q: str) -> list[Call]:
    q = _QUOTED.sub("''", q)  # a quoted title ('Task Update on ...') says nothing about tasks
    if "fewest overdue" in q:
        return []  # compares every colleague: no single read answers it
    if "most completed front end tasks" in q or "most completed front-end tasks" in q:
        return [("project_management_search_tasks", {"list_name": "Completed", "board": "Front end"}, "condition")]
    if not re.search(r"\btasks?\b", q):
        return []
    owner = None
    for name in _names(q):
        if re.search(rf"\b{name}(?:'s|\s+is\s|\s+has\s|\s+hasn't\s|\s+might have\b)|\bof {name}'s|\bif {name}\b", q):
            owner = name
            break
    address = _address(owner) if owner else None
    if address is None:
        return []
    purpose = "condition" if "overdue" in q and needs_condition(q) else "context"
    return [(DIRECTORY_TOOL, {"name": owner}, "directory"),
            ("project_management_search_tasks", {"assigned_to_email": address}, purpose)]


def customers(q: str) -> list[Call]:
    names = {row["customer_name"] for row in pristine().crm}
    mentioned = [n for n in names if n.lower() in q]
    if mentioned and re.search(r"spoke|spoken|talked", q):
        return [("customer_relationship_manager_search_customers", {"customer_name": mentioned[0]}, "condition")]
    m = re.search(r"proposal for the (\w+) product in (\d+) weeks", q)
    if m and m.group(1) in PRODUCTS:
        cutoff = (TODAY - dt.timedelta(weeks=int(m.group(2)))).isoformat()
        return [("customer_relationship_manager_search_customers",
                 {"status": "Proposal", "product_interest": m.group(1).title(), "last_contact_date_max": cutoff},
                 "context")]
    m = re.search(r"\b(\w+)'s (?:new )?(leads|customers)\b|leads assigned to (\w+)'s", q)
    if not m or "crm" not in q:
        return []
    owner = m.group(1) or m.group(3)
    if owner not in _names(q):
        return []
    filters: dict[str, Any] = {"assigned_to_email": owner}
    product = next((p for p in PRODUCTS if re.search(rf"interested in {p}", q)), None)
    if product:
        filters["product_interest"] = product.title()
    stage = re.search(r"in the (\w+) stage", q)
    if stage and stage.group(1) in STATUSES:
        filters["status"] = STATUSES[stage.group(1)]
    elif m.group(2) == "leads" or "leads" in q:
        filters["status"] = "Lead"
    return [("customer_relationship_manager_search_customers", filters, "context")]


RECIPES: tuple[Callable[[str], list[Call]], ...] = (analytics_conditions, calendar_and_email, tasks, customers)


def _page_size_for(name: str, args: dict[str, Any], output: str) -> dict[str, Any]:
    """Ask for a page big enough to hold every match (the model sees the total in the first answer)."""
    try:
        data = json.loads(output)
    except json.JSONDecodeError:
        return args
    if not isinstance(data, dict) or "pagination" not in data:
        return args
    pagination = data["pagination"]
    total = next((v for k, v in pagination.items() if k.startswith("total_") and k != "total_pages"), 0)
    size = next((s for s in PAGE_STEPS if s >= total), PAGE_STEPS[-1])
    return args if size <= 5 else {**args, "page_size": size}


def recipe_reads(query: str, tools: set[str]) -> tuple[list[Lookup], bool, str | None]:
    """(reads, a condition recipe matched, reason why a matched recipe cannot be used)."""
    q = " ".join(query.lower().split())
    calls = [c for recipe in RECIPES for c in recipe(q)]
    reads: list[Lookup] = []
    seen: set[str] = set()
    for name, args, purpose in calls:
        if name not in tools:
            return [], False, f"recipe needs a tool the task does not offer ({name})"
        output = read(name, args)
        sized = _page_size_for(name, args, output)
        if sized is not args:
            args, output = sized, read(name, sized)
        key = name + json.dumps(args, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        reads.append(Lookup(name, args, output, purpose))
    return reads, any(r.purpose == "condition" for r in reads), None


_METRIC_TOOLS = frozenset(name for name, _ in METRICS.values())
_THRESHOLD = re.compile(r"\b(more|less) than (\d+(?:\.\d+)?)\b(?!\s*%)")


def condition_holds(query: str, read: Lookup) -> bool | None:
    """Whether a condition read's output says the query's "then" branch applies (None: not checkable).

    Checked: "nothing found" conditions (haven't met / hasn't sent / no meeting
    scheduled), metric thresholds ("more than 21 at any time"), and overdue
    tasks (due before today, not completed).
    """
    q = " ".join(query.lower().split())
    if read.name in ("calendar_search_events", "email_search_emails"):
        return read.output in ("No events found.", "No emails found.")
    if read.name in _METRIC_TOOLS and not re.search(r"%|grew|growth", q):
        m = _THRESHOLD.search(q)
        if not m:
            return None
        values = json.loads(read.output).values()
        limit = float(m.group(2))
        return any(v > limit for v in values) if m.group(1) == "more" else any(v < limit for v in values)
    if read.name == "project_management_search_tasks" and "overdue" in q:
        rows = json.loads(read.output)
        return any(r["due_date"] < TODAY.isoformat() and r["list_name"] != "Completed" for r in rows)
    return None


def condition_agrees(query: str, reads: list[Lookup], writes: bool) -> bool | None:
    """For queries whose only branch is "then": does the condition read imply the ground truth's writes?"""
    q = query.lower()
    if re.search(r"otherwise|if not,? say|if not say", q):
        return None  # both branches write: which one the ground truth took is not "writes or not"
    checks = [condition_holds(query, r) for r in reads if r.purpose == "condition"]
    if len(checks) != 1 or checks[0] is None:
        return None
    return checks[0] == writes
