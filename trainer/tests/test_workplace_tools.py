"""Behaviour of the 27 workplace tools and of the session that dispatches them."""

from __future__ import annotations

import csv
import json
from collections import Counter
from typing import Any

import pytest

from grpo_trainer.workplace.databases import CSV_DIR, CURRENT_TIME, pristine
from grpo_trainer.workplace.schemas import DOMAIN_TOOLS, SYSTEM_PROMPT, TOOL_NAMES, TOOL_SCHEMAS
from grpo_trainer.workplace.session import WorkplaceSession, is_error
from grpo_trainer.workplace.tools import TOOLS


@pytest.fixture
def s() -> WorkplaceSession:
    return WorkplaceSession()


def ok(session: WorkplaceSession, tool: str, /, **arguments: Any) -> Any:
    """Call a tool that must succeed; return its decoded result."""
    out = session.call(tool, arguments)
    assert not is_error(out), out
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        return out


def err(session: WorkplaceSession, tool: str, /, **arguments: Any) -> str:
    """Call a tool that must fail; return the message after the prefix."""
    out = session.call(tool, arguments)
    prefix = f"Error executing tool '{tool}': "
    assert out.startswith(prefix), out
    return out[len(prefix) :]


def rows(table: str) -> list[dict[str, str]]:
    with (CSV_DIR / "processed" / f"{table}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- registry and schemas ---------------------------------------------------------


def test_every_schema_has_an_implementation_with_the_same_parameters() -> None:
    assert len(TOOL_SCHEMAS) == 27
    assert set(TOOLS) == set(TOOL_NAMES)
    kinds = {"string": str, "integer": int}
    for schema in TOOL_SCHEMAS:
        spec = TOOLS[schema["name"]]
        props = schema["parameters"]["properties"]
        assert list(props) == list(spec.param_names), schema["name"]
        assert [kinds[props[p.name]["type"]] for p in spec.params] == [p.kind for p in spec.params]


def test_schemas_and_prompt_are_nemo_gyms() -> None:
    example = (CSV_DIR.parent / "example.jsonl").read_text().splitlines()
    for line in example:
        params = json.loads(line)["responses_create_params"]
        assert params["tools"] == TOOL_SCHEMAS
        assert params["input"][0] == {"role": "system", "content": SYSTEM_PROMPT}


def test_domain_tool_sets() -> None:
    assert DOMAIN_TOOLS["workplace_assistant_multi_domain"] == list(TOOL_NAMES)
    for category in ("email", "calendar", "analytics", "project_management", "customer_relationship_manager"):
        names = DOMAIN_TOOLS["workplace_assistant_" + category]
        assert names[0] == "company_directory_find_email_address"
        assert names[1:] and all(n.startswith(category + "_") for n in names[1:])
    assert sum(len(v) - 1 for k, v in DOMAIN_TOOLS.items() if not k.endswith("multi_domain")) == 26


def test_search_tools_paginate_with_gym_defaults() -> None:
    for name in ("email_search_emails", "calendar_search_events", "customer_relationship_manager_search_customers"):
        defaults = {p.name: p.default for p in TOOLS[name].params}
        assert defaults["page"] == 1 and defaults["page_size"] == 5


# --- company directory -----------------------------------------------------------


def test_find_email_address(s: WorkplaceSession) -> None:
    assert ok(s, "company_directory_find_email_address", name="NADIA") == ["nadia.moreau@atlas.com"]
    patels = ok(s, "company_directory_find_email_address", name="patel")
    assert patels == ["anaya.patel@atlas.com", "raj.patel@atlas.com"]
    assert ok(s, "company_directory_find_email_address", name="zzz") == []
    assert err(s, "company_directory_find_email_address") == "Name not provided."
    assert len(pristine().directory) == 20


# --- email -----------------------------------------------------------------------


def test_get_email_information_by_id(s: WorkplaceSession) -> None:
    subject = ok(s, "email_get_email_information_by_id", email_id="00000057", field="subject")
    assert subject == {"subject": "Task Update on Develop prototype for report generation"}
    assert err(s, "email_get_email_information_by_id", email_id="00000999", field="subject") == "Email not found."
    assert err(s, "email_get_email_information_by_id", field="subject") == "Email ID not provided."
    assert err(s, "email_get_email_information_by_id", email_id="00000057") == "Field not provided."
    assert "Available fields: email_id, inbox/outbox" in err(
        s, "email_get_email_information_by_id", email_id="00000057", field="sender"
    )


def test_search_emails_matches_all_words_newest_first(s: WorkplaceSession) -> None:
    result = ok(s, "email_search_emails", query="kofi", page_size=1)
    assert result["emails"][0]["email_id"] == "00000259"
    assert result["pagination"] == {"total_emails": 26, "page": 1, "page_size": 1, "total_pages": 26}
    everything = ok(s, "email_search_emails", query="kofi", page_size=100)["emails"]
    stamps = [e["sent_datetime"] for e in everything]
    assert stamps == sorted(stamps, reverse=True) and len(everything) == 26
    # All words must occur, in any field and any order.
    a = ok(s, "email_search_emails", query="wireframe KOFI", page_size=100)
    b = ok(s, "email_search_emails", query="kofi wireframe", page_size=100)
    assert a == b and 0 < a["pagination"]["total_emails"] < 26
    assert ok(s, "email_search_emails", query="kofi qwertyuiop") == "No emails found."


def test_search_emails_dates_default_page_and_clamping(s: WorkplaceSession) -> None:
    day = ok(s, "email_search_emails", date_min="2023-11-22", date_max="2023-11-22", page_size=50)
    expected = [r for r in rows("emails") if r["sent_datetime"].startswith("2023-11-22")]
    assert day["pagination"]["total_emails"] == len(expected) > 0
    assert all(e["sent_datetime"].startswith("2023-11-22") for e in day["emails"])
    first = ok(s, "email_search_emails")
    assert len(first["emails"]) == 5 and first["pagination"]["total_emails"] == 500
    last = ok(s, "email_search_emails", page=999)
    assert last["pagination"]["page"] == 100 and len(last["emails"]) == 5
    assert "page_size" in err(s, "email_search_emails", page_size=0)
    assert "date_min" in err(s, "email_search_emails", date_min="not a date")


def test_send_email(s: WorkplaceSession) -> None:
    assert ok(s, "email_send_email", recipient="Nadia.Moreau@atlas.com", subject="Hi", body="Body") == (
        "Email sent successfully."
    )
    sent = s.db.emails[-1]
    # Gym does not zero-pad new email ids ("500" after "00000499").
    assert sent == {
        "email_id": "500",
        "inbox/outbox": "outbox",
        "sender/recipient": "nadia.moreau@atlas.com",
        "subject": "Hi",
        "sent_datetime": CURRENT_TIME,
        "body": "Body",
    }
    ok(s, "email_send_email", recipient="raj.patel@atlas.com", subject="Again", body="x")
    assert s.db.emails[-1]["email_id"] == "501"
    assert err(s, "email_send_email", recipient="raj", subject="a", body="b") == "Invalid recipient email address."
    assert err(s, "email_send_email", recipient="raj.patel@atlas.com", body="b") == (
        "Recipient, subject, or body not provided."
    )
    assert len(s.db.emails) == 502


def test_delete_email(s: WorkplaceSession) -> None:
    assert ok(s, "email_delete_email", email_id="00000479") == "Email deleted successfully."
    assert err(s, "email_get_email_information_by_id", email_id="00000479", field="body") == "Email not found."
    assert err(s, "email_delete_email", email_id="00000479") == "Email not found."
    assert err(s, "email_delete_email") == "Email ID not provided."
    assert len(s.db.emails) == 499


def test_forward_email(s: WorkplaceSession) -> None:
    original = next(r for r in rows("emails") if r["email_id"] == "00000173")
    assert ok(s, "email_forward_email", email_id="00000173", recipient="NIA.johnson@atlas.com") == (
        "Email forwarded successfully."
    )
    new = s.db.emails[-1]
    assert new["subject"] == "FW: " + original["subject"] and new["body"] == original["body"]
    assert new["sender/recipient"] == "nia.johnson@atlas.com" and new["inbox/outbox"] == "outbox"
    assert err(s, "email_forward_email", email_id="00000173", recipient="nia") == "Invalid recipient email address."
    assert err(s, "email_forward_email", email_id="12345678", recipient="nia@atlas.com") == "Email not found."
    assert err(s, "email_forward_email", email_id="00000173") == "Email ID or recipient not provided."


def test_reply_email(s: WorkplaceSession) -> None:
    assert ok(s, "email_reply_email", email_id="00000057", body="Thanks") == "Email replied successfully."
    new = s.db.emails[-1]
    assert new["sender/recipient"] == "carlos.rodriguez@atlas.com"
    assert new["subject"] == "RE: Task Update on Develop prototype for report generation"
    assert new["body"] == "Thanks"
    assert err(s, "email_reply_email", email_id="00000999", body="x") == "Email not found."
    assert err(s, "email_reply_email", email_id="00000057") == "Email ID or body not provided."


# --- calendar --------------------------------------------------------------------


def test_get_event_information_by_id(s: WorkplaceSession) -> None:
    assert ok(s, "calendar_get_event_information_by_id", event_id="00000252", field="event_start") == {
        "event_start": "2023-12-01 15:00:00"
    }
    assert err(s, "calendar_get_event_information_by_id", event_id="252", field="event_name") == (
        "Invalid event ID format. Expected 8-digit ID."
    )
    assert err(s, "calendar_get_event_information_by_id", event_id="00000999", field="event_name") == (
        "Event not found."
    )
    assert err(s, "calendar_get_event_information_by_id", event_id="00000252", field="title").startswith(
        "Invalid field. Available fields are: event_id"
    )


def test_search_events(s: WorkplaceSession) -> None:
    day = ok(s, "calendar_search_events", time_min="2023-12-01 00:00:00", time_max="2023-12-01 23:59:59")
    starts = [e["event_start"] for e in day["events"]]
    assert starts == sorted(starts, reverse=True) and starts[0] == "2023-12-01 15:00:00"
    assert day["pagination"] == {"total_events": 6, "page": 1, "page_size": 5, "total_pages": 2}
    page2 = ok(s, "calendar_search_events", time_min="2023-12-01", time_max="2023-12-01 23:59:59", page=2)
    assert len(page2["events"]) == 1
    # Query is matched against the name or the participant, case-insensitively.
    by_person = ok(s, "calendar_search_events", query="AISHA", page_size=500)["events"]
    assert by_person and all("aisha" in e["participant_email"] or "aisha" in e["event_name"].lower() for e in by_person)
    by_name = ok(s, "calendar_search_events", query="risk management forum", page_size=500)["events"]
    assert by_name and all(e["event_name"].lower() == "risk management forum" for e in by_name)
    assert ok(s, "calendar_search_events", query="no such meeting") == "No events found."
    assert "time_max" in err(s, "calendar_search_events", time_max="soon")


def test_create_event(s: WorkplaceSession) -> None:
    args = {"event_name": "Sync", "participant_email": "Raj.Patel@atlas.com", "event_start": "2023-12-01 13:00:00"}
    assert ok(s, "calendar_create_event", duration="30", **args) == "00000300"
    assert s.db.calendar_events[-1]["participant_email"] == "raj.patel@atlas.com"
    assert ok(s, "calendar_create_event", duration="45", **args) == "00000301"
    assert err(s, "calendar_create_event", duration="0", **args) == "Duration must be a positive number of minutes."
    assert err(s, "calendar_create_event", duration="half an hour", **args) == (
        "Invalid duration format. Expected a number of minutes."
    )
    assert err(s, "calendar_create_event", **{**args, "event_start": "tomorrow-ish"}, duration="30") == (
        "Invalid event_start format. Expected YYYY-MM-DD HH:MM:SS."
    )
    assert err(s, "calendar_create_event", **{**args, "event_name": ""}, duration="30") == "Event name not provided."
    assert len(s.db.calendar_events) == 302


def test_delete_event(s: WorkplaceSession) -> None:
    assert ok(s, "calendar_delete_event", event_id="00000252") == "Event deleted successfully."
    assert err(s, "calendar_delete_event", event_id="00000252") == "Event not found."
    assert err(s, "calendar_delete_event", event_id="0000025x") == "Invalid event ID format. Expected 8-digit ID."


def test_update_event(s: WorkplaceSession) -> None:
    assert ok(s, "calendar_update_event", event_id="00000252", field="event_name", new_value="Forum") == (
        "Event updated successfully."
    )
    ok(s, "calendar_update_event", event_id="00000252", field="participant_email", new_value="KOFI.mensah@atlas.com")
    event = next(e for e in s.db.calendar_events if e["event_id"] == "00000252")
    assert event["event_name"] == "Forum" and event["participant_email"] == "kofi.mensah@atlas.com"
    assert err(s, "calendar_update_event", event_id="00000252", field="event_id", new_value="1").startswith(
        "Invalid field."
    )
    assert err(s, "calendar_update_event", event_id="00000252", field="duration", new_value="-5") == (
        "Duration must be a positive number of minutes."
    )
    assert err(s, "calendar_update_event", event_id="00000999", field="duration", new_value="5") == "Event not found."
    assert err(s, "calendar_update_event", event_id="00000252", field="duration") == (
        "Event ID, field, or new value not provided."
    )


# --- analytics -------------------------------------------------------------------


def test_get_visitor_information_by_id(s: WorkplaceSession) -> None:
    assert ok(s, "analytics_get_visitor_information_by_id", visitor_id="0860") == [
        {
            "date_of_visit": "2023-10-22",
            "visitor_id": "0860",
            "page_views": "8",
            "session_duration_seconds": "4",
            "traffic_source": "referral",
            "user_engaged": False,
        }
    ]
    assert err(s, "analytics_get_visitor_information_by_id", visitor_id="860") == "Visitor not found."
    assert err(s, "analytics_get_visitor_information_by_id") == "Visitor ID not provided."


def test_create_plot_is_the_analytics_state(s: WorkplaceSession) -> None:
    span = {"time_min": "2023-11-21", "time_max": "2023-11-30"}
    path = ok(s, "analytics_create_plot", **span, value_to_plot="total_visits", plot_type="bar")
    assert path == "plots/2023-11-21_2023-11-30_total_visits_bar.png"
    assert s.db.plots == [path]
    assert s.snapshot().analytics.rows == ((path,),)
    assert err(s, "analytics_create_plot", **span, value_to_plot="visits", plot_type="bar").startswith(
        "Value to plot must be one of 'total_visits'"
    )
    assert err(s, "analytics_create_plot", **span, value_to_plot="user_engaged", plot_type="pie").startswith(
        "Plot type must be one of 'bar'"
    )
    assert err(s, "analytics_create_plot", time_max="2023-11-30", value_to_plot="user_engaged", plot_type="bar") == (
        "Start date not provided."
    )
    assert err(s, "analytics_create_plot", time_min="2023-11-21", value_to_plot="user_engaged", plot_type="bar") == (
        "End date not provided."
    )
    assert len(s.db.plots) == 1


def test_daily_aggregates_match_the_csv(s: WorkplaceSession) -> None:
    data = rows("analytics_data")
    window = [r for r in data if "2023-11-20" <= r["date_of_visit"] <= "2023-11-30"]
    visits = ok(s, "analytics_total_visits_count", time_min="2023-11-20", time_max="2023-11-30")
    assert visits == dict(sorted(Counter(r["date_of_visit"] for r in window).items()))
    assert sum(ok(s, "analytics_total_visits_count").values()) == 1000
    engaged = ok(s, "analytics_engaged_users_count", time_min="2023-11-20", time_max="2023-11-30")
    assert engaged == {d: sum(r["user_engaged"] == "True" for r in window if r["date_of_visit"] == d) for d in visits}
    span = {"time_min": "2023-11-20", "time_max": "2023-11-30"}
    direct = ok(s, "analytics_traffic_source_count", **span, traffic_source="direct")
    assert set(direct) == set(visits) and direct == {
        d: sum(r["traffic_source"] == "direct" for r in window if r["date_of_visit"] == d) for d in visits
    }
    sources = {r["traffic_source"] for r in data}
    per_source = [ok(s, "analytics_traffic_source_count", time_min="2023-11-20", traffic_source=src) for src in sources]
    assert {d: sum(p[d] for p in per_source) for d in visits} == visits
    assert ok(s, "analytics_traffic_source_count", time_min="2023-11-20") == visits
    durations = ok(s, "analytics_get_average_session_duration", time_min="2023-11-30")
    last_day = [float(r["session_duration_seconds"]) for r in data if r["date_of_visit"] == "2023-11-30"]
    assert durations == {"2023-11-30": pytest.approx(sum(last_day) / len(last_day))}
    # Bounds are compared as strings, so a bound past the data gives nothing.
    assert ok(s, "analytics_total_visits_count", time_min="2023-12-01") == {}


# --- project management ----------------------------------------------------------


def test_get_task_information_by_id(s: WorkplaceSession) -> None:
    assert ok(s, "project_management_get_task_information_by_id", task_id="00000149", field="board") == {
        "board": "Front end"
    }
    assert err(s, "project_management_get_task_information_by_id", task_id="00000999", field="board") == (
        "Task not found."
    )
    assert err(s, "project_management_get_task_information_by_id", task_id="00000149", field="owner") == (
        "Field not found."
    )


def test_search_tasks(s: WorkplaceSession) -> None:
    kofi = ok(s, "project_management_search_tasks", assigned_to_email="KOFI.MENSAH@atlas.com")
    expected = [r for r in rows("project_tasks") if r["assigned_to_email"] == "kofi.mensah@atlas.com"]
    assert kofi == expected and kofi
    in_review = ok(s, "project_management_search_tasks", assigned_to_email="kofi.mensah@atlas.com", list_name="in rev")
    assert in_review == [t for t in expected if t["list_name"] == "In Review"]
    # Searches are not paginated; an empty result is a normal answer.
    assert len(ok(s, "project_management_search_tasks", board="design")) > 5
    assert ok(s, "project_management_search_tasks", task_name="no such task at all") == []
    assert err(s, "project_management_search_tasks") == "No search parameters provided."
    assert err(s, "project_management_search_tasks", assigned_to_email="kofi") == (
        "Invalid email format for assigned_to_email."
    )
    assert "page" in err(s, "project_management_search_tasks", board="Design", page=2)


def test_create_task(s: WorkplaceSession) -> None:
    args = {"task_name": "Ship it", "list_name": "Backlog", "due_date": "2023-12-08", "board": "Front end"}
    assert ok(s, "project_management_create_task", assigned_to_email="Olga.Petrova@atlas.com", **args) == "00000300"
    assert s.db.project_tasks[-1]["assigned_to_email"] == "olga.petrova@atlas.com"
    assert err(s, "project_management_create_task", assigned_to_email="sam@atlas.com", **args) == (
        "Assignee email not valid. Please choose from the list of team members."
    )
    olga = {**args, "assigned_to_email": "olga.petrova@atlas.com"}
    assert err(s, "project_management_create_task", **{**olga, "list_name": "backlog"}).startswith("List not valid.")
    assert err(s, "project_management_create_task", **{**olga, "board": "Backend"}).startswith("Board not valid.")
    assert err(s, "project_management_create_task", task_name="x") == "Missing task details."


def test_delete_task(s: WorkplaceSession) -> None:
    assert ok(s, "project_management_delete_task", task_id="00000149") == "Task deleted successfully."
    assert err(s, "project_management_delete_task", task_id="00000149") == "Task not found."
    assert err(s, "project_management_delete_task") == "Task ID not provided."


def test_update_task(s: WorkplaceSession) -> None:
    assert ok(s, "project_management_update_task", task_id="00000149", field="list_name", new_value="In Review") == (
        "Task updated successfully."
    )
    assignee = {"task_id": "00000149", "field": "assigned_to_email"}
    ok(s, "project_management_update_task", **assignee, new_value="NIA.johnson@atlas.com")
    task = next(t for t in s.db.project_tasks if t["task_id"] == "00000149")
    assert task["list_name"] == "In Review" and task["assigned_to_email"] == "nia.johnson@atlas.com"
    # Only people who already hold a task count as team members.
    assert err(s, "project_management_update_task", **assignee, new_value="raj.patel@atlas.com") == (
        "Assignee email not valid. Please choose from the list of team members."
    )
    assert err(s, "project_management_update_task", task_id="00000149", field="board", new_value="design").startswith(
        "Board not valid."
    )
    assert err(s, "project_management_update_task", task_id="00000149", field="priority", new_value="high") == (
        "Field not valid."
    )
    assert err(s, "project_management_update_task", task_id="00000999", field="task_name", new_value="x") == (
        "Task not found."
    )


# --- customer relationship manager ----------------------------------------------

SEARCH_CUSTOMERS = "customer_relationship_manager_search_customers"
UPDATE_CUSTOMER = "customer_relationship_manager_update_customer"
CRM_TABLE = "customer_relationship_manager_data"


def test_search_customers(s: WorkplaceSession) -> None:
    casey = ok(s, SEARCH_CUSTOMERS, customer_name="casey wilson")
    assert [c["customer_id"] for c in casey["customers"]] == ["00000014"]
    assert casey["customers"][0]["customer_phone"] is None
    leads = ok(s, SEARCH_CUSTOMERS, status="lead", page_size=1000)
    assert leads["pagination"]["total_customers"] == sum(r["status"] == "Lead" for r in rows(CRM_TABLE))
    page2 = ok(s, SEARCH_CUSTOMERS, status="Lead", page=2)
    assert page2["customers"] == leads["customers"][5:10]
    # Dates are compared as text against "YYYY-MM-DD 23:59:00", so a bare
    # date as upper bound excludes that very day.
    on_day = ok(s, SEARCH_CUSTOMERS, last_contact_date_min="2023-11-30", page_size=1000)
    assert on_day["customers"] and all(c["last_contact_date"].startswith("2023-11-30") for c in on_day["customers"])
    same_day = {"last_contact_date_min": "2023-11-30", "last_contact_date_max": "2023-11-30"}
    assert ok(s, SEARCH_CUSTOMERS, **same_day) == "No customers found."
    assert err(s, SEARCH_CUSTOMERS, page=2) == (
        "No search parameters provided. Please provide at least one parameter."
    )


def test_update_customer(s: WorkplaceSession) -> None:
    casey = {"customer_id": "00000014"}
    assert ok(s, UPDATE_CUSTOMER, **casey, field="status", new_value="Won") == "Customer updated successfully."
    ok(s, UPDATE_CUSTOMER, **casey, field="customer_email", new_value="CASEY@X.COM")
    row = next(c for c in s.db.crm if c["customer_id"] == "00000014")
    assert row["status"] == "Won" and row["customer_email"] == "casey@x.com"
    assert err(s, UPDATE_CUSTOMER, **casey, field="status", new_value="won").startswith("Status not valid.")
    assert err(s, UPDATE_CUSTOMER, **casey, field="product_interest", new_value="Food").startswith(
        "Product interest not valid."
    )
    assert err(s, UPDATE_CUSTOMER, **casey, field="age", new_value="3").startswith("Field not valid.")
    assert err(s, UPDATE_CUSTOMER, customer_id="00000999", field="notes", new_value="x") == "Customer not found."


def test_add_customer(s: WorkplaceSession) -> None:
    add = "customer_relationship_manager_add_customer"
    new_id = ok(s, add, customer_name="Dakota Thomas", assigned_to_email="Nadia.Moreau@atlas.com", status="Lead")
    assert new_id == "00000200"
    assert s.db.crm[-1] == {
        "customer_id": "00000200",
        "assigned_to_email": "nadia.moreau@atlas.com",
        "customer_name": "Dakota Thomas",
        "customer_email": None,
        "customer_phone": None,
        "last_contact_date": None,
        "product_interest": None,
        "status": "Lead",
        "follow_up_by": None,
        "notes": "",
    }
    assert err(s, add, customer_name="X", status="Lead") == (
        "Please provide all required fields: customer_name, assigned_to_email, status."
    )


def test_delete_customer(s: WorkplaceSession) -> None:
    assert ok(s, "customer_relationship_manager_delete_customer", customer_id="00000014") == (
        "Customer deleted successfully."
    )
    assert err(s, "customer_relationship_manager_delete_customer", customer_id="00000014") == "Customer not found."
    assert err(s, "customer_relationship_manager_delete_customer") == "Customer ID not provided."


# --- session ---------------------------------------------------------------------


def test_session_reports_every_failure_as_text(s: WorkplaceSession) -> None:
    assert s.call("email_fly", {}) == "Error executing tool 'email_fly': no such tool"
    assert err(s, "email_send_email", recipient="a@b.c", subject="s", body="b", cc="x").startswith(
        "unexpected argument(s) 'cc'"
    )
    bad_json = s.call("email_delete_email", '{"email_id": ')
    assert bad_json.startswith("Error executing tool 'email_delete_email': arguments are not valid JSON")
    assert is_error(s.call("email_delete_email", "[1, 2]"))
    # A regex the tool cannot compile is an error, not a crash.
    assert "invalid search pattern" in err(s, "calendar_search_events", query="(")
    # An exception inside a tool comes back as text too.
    assert err(s, "company_directory_find_email_address", name=5).startswith("AttributeError")
    assert len(s.calls) == 6


def test_a_model_argument_named_self_is_an_error_answer_not_a_crash() -> None:
    # Seen on an H200: a sampled call analytics_total_visits_count(self=...) raised TypeError
    # ("got multiple values for argument 'self'") out of the tool method and ended the run.
    from grpo_trainer.rollout.tool_env import env_class, tool_schemas_for

    env = env_class("workplace_assistant_analytics")()
    env.reset(ground_truth="[]")
    answer = env.analytics_total_visits_count(self="x", time_min="2023-10-01")
    assert answer == ("Error executing tool 'analytics_total_visits_count': unexpected argument(s) 'self'; "
                      "accepted: time_min, time_max")
    assert env.calls == [{"name": "analytics_total_visits_count",
                          "arguments": '{"self": "x", "time_min": "2023-10-01"}'}]
    # The receiver still stays out of the schema the model sees.
    schema = next(t["function"] for t in tool_schemas_for("workplace_assistant_analytics")
                  if t["function"]["name"] == "analytics_total_visits_count")
    assert set(schema["parameters"]["properties"]) == {"time_min", "time_max"}


def test_session_accepts_json_text_and_drops_nulls(s: WorkplaceSession) -> None:
    out = s.call("email_search_emails", '{"query": "kofi", "date_min": null, "page_size": 1}')
    assert json.loads(out)["emails"][0]["email_id"] == "00000259"
    text = '{"query": "kofi", "date_min": null, "page_size": 1}'
    assert s.calls == [{"name": "email_search_emails", "arguments": text}]
    s.call("email_delete_email", {"email_id": "00000259"})
    assert s.calls[-1] == {"name": "email_delete_email", "arguments": '{"email_id": "00000259"}'}


def test_sessions_are_isolated() -> None:
    first, second = WorkplaceSession(), WorkplaceSession()
    ok(first, "email_delete_email", email_id="00000479")
    ok(first, "customer_relationship_manager_update_customer", customer_id="00000014", field="notes", new_value="x")
    assert len(second.db.emails) == 500 and len(WorkplaceSession().db.emails) == 500
    assert next(c for c in WorkplaceSession().db.crm if c["customer_id"] == "00000014")["notes"] != "x"
    assert WorkplaceSession().snapshot() == second.snapshot() != first.snapshot()


def test_values_keep_their_json_type_like_gym(s: WorkplaceSession) -> None:
    # Gym runs plain Python: a number where the schema says string is stored
    # as a number rather than rejected.
    args = {"event_name": "Sync", "participant_email": "raj.patel@atlas.com", "event_start": "2023-12-01 13:00:00"}
    assert ok(s, "calendar_create_event", duration=30, **args) == "00000300"
    assert s.db.calendar_events[-1]["duration"] == 30
    assert err(s, "email_search_emails", page="2").startswith("TypeError")
