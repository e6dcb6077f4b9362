"""Calendar toolkit: look up, search, create, delete and update events."""

from __future__ import annotations

from typing import Any

from grpo_trainer.workplace.databases import CALENDAR_COLUMNS
from grpo_trainer.workplace.tools._common import (
    Databases,
    ToolSpec,
    find_row,
    integer,
    matcher,
    next_id,
    paginate,
    parse_timestamp,
    remove_rows,
    require,
    string,
    timestamp,
    tool,
)

READABLE_FIELDS = ("event_id", "event_name", "participant_email", "event_start", "duration")
UPDATABLE_FIELDS = ("event_name", "participant_email", "event_start", "duration")

BAD_START = "Invalid event_start format. Expected YYYY-MM-DD HH:MM:SS."


def _check_event_id(event_id: str) -> None:
    # Unlike the other toolkits, Gym's calendar rejects ids that are not
    # exactly eight digits before looking anything up.
    valid = isinstance(event_id, str) and len(event_id) == 8 and event_id.isdigit()
    require(valid, "Invalid event ID format. Expected 8-digit ID.")


def _check_start(value: str) -> None:
    try:
        timestamp(value)
    except ValueError:
        require(False, BAD_START)


def _check_duration(value: str) -> None:
    try:
        minutes = int(value)
    except ValueError:
        require(False, "Invalid duration format. Expected a number of minutes.")
    else:
        require(minutes > 0, "Duration must be a positive number of minutes.")


@tool("calendar_get_event_information_by_id", string("event_id"), string("field"))
def get_event_information_by_id(db: Databases, event_id: str | None, field: str | None) -> dict[str, Any]:
    require(event_id, "Event ID not provided.")
    require(field, "Field not provided.")
    assert event_id is not None
    _check_event_id(event_id)
    require(field in READABLE_FIELDS, f"Invalid field. Available fields are: {', '.join(READABLE_FIELDS)}")
    event = find_row(db.calendar_events, "event_id", event_id)
    require(event is not None, "Event not found.")
    assert event is not None and field is not None
    return {field: event[field]}


@tool(
    "calendar_search_events",
    string("query", ""),
    string("time_min"),
    string("time_max"),
    integer("page", 1),
    integer("page_size", 5),
)
def search_events(
    db: Databases, query: str, time_min: str | None, time_max: str | None, page: int, page_size: int
) -> dict[str, Any] | str:
    low = parse_timestamp(time_min, "time_min") if time_min else None
    high = parse_timestamp(time_max, "time_max") if time_max else None
    # The query is one regex matched against the name or the participant.
    matches = matcher(query)
    hits = [dict(e) for e in db.calendar_events if matches(e["event_name"]) or matches(e["participant_email"])]

    def start(event: dict[str, Any]) -> Any:
        return parse_timestamp(event["event_start"], "event_start")

    # Both bounds apply to the start time, inclusive.
    if low is not None:
        hits = [e for e in hits if start(e) >= low]
    if high is not None:
        hits = [e for e in hits if start(e) <= high]
    if not hits:
        return "No events found."
    hits.sort(key=start, reverse=True)  # latest first
    return paginate(hits, page, page_size, "events", "total_events")


@tool(
    "calendar_create_event",
    string("event_name"),
    string("participant_email"),
    string("event_start"),
    string("duration"),
)
def create_event(
    db: Databases,
    event_name: str | None,
    participant_email: str | None,
    event_start: str | None,
    duration: str | None,
) -> str:
    require(event_name, "Event name not provided.")
    require(participant_email, "Participant email not provided.")
    require(event_start, "Event start not provided.")
    require(duration, "Event duration not provided.")
    assert participant_email is not None and event_start is not None and duration is not None
    _check_start(event_start)
    _check_duration(duration)
    event_id = next_id(db.calendar_events, "event_id", pad=True)
    # Values are stored as given (no reformatting); only the address is
    # normalised to lower case.
    values = (event_id, event_name, participant_email.lower(), event_start, duration)
    db.calendar_events.append(dict(zip(CALENDAR_COLUMNS, values, strict=True)))
    return event_id


@tool("calendar_delete_event", string("event_id"))
def delete_event(db: Databases, event_id: str | None) -> str:
    require(event_id, "Event ID not provided.")
    assert event_id is not None
    _check_event_id(event_id)
    require(find_row(db.calendar_events, "event_id", event_id) is not None, "Event not found.")
    remove_rows(db.calendar_events, "event_id", event_id)
    return "Event deleted successfully."


@tool("calendar_update_event", string("event_id"), string("field"), string("new_value"))
def update_event(db: Databases, event_id: str | None, field: str | None, new_value: str | None) -> str:
    require(event_id and field and new_value, "Event ID, field, or new value not provided.")
    assert event_id is not None and field is not None and new_value is not None
    _check_event_id(event_id)
    require(field in UPDATABLE_FIELDS, f"Invalid field. Available fields are: {', '.join(UPDATABLE_FIELDS)}")
    if field == "event_start":
        _check_start(new_value)
    elif field == "duration":
        _check_duration(new_value)
    event = find_row(db.calendar_events, "event_id", event_id)
    require(event is not None, "Event not found.")
    assert event is not None
    event[field] = new_value.lower() if field == "participant_email" else new_value
    return "Event updated successfully."


TOOLS: tuple[ToolSpec, ...] = (
    get_event_information_by_id,
    search_events,
    create_event,
    delete_event,
    update_event,
)
