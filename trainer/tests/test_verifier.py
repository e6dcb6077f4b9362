"""The state-matching reward, checked against every converted task."""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import Any

import pytest

from grpo_trainer.data.convert_workbench import load_workbench
from grpo_trainer.workplace import verifier
from grpo_trainer.workplace.databases import CSV_DIR, pristine
from grpo_trainer.workplace.session import TableState, WorkplaceSession, is_error
from grpo_trainer.workplace.verifier import replay, reward, reward_for_session, states_equal, writes_state

EXAMPLE = CSV_DIR.parent / "example.jsonl"
UPDATE_CUSTOMER = "customer_relationship_manager_update_customer"
ADD_CUSTOMER = "customer_relationship_manager_add_customer"


@lru_cache(maxsize=1)
def all_tasks() -> list[dict[str, Any]]:
    examples = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    return load_workbench() + examples


def call(name: str, **arguments: Any) -> dict[str, str]:
    return {"name": name, "arguments": json.dumps(arguments)}


def test_every_ground_truth_replays_without_a_tool_error() -> None:
    tasks = all_tasks()
    assert len(tasks) == 690 + 5
    failures = []
    for task in tasks:
        session = WorkplaceSession()
        for c in task["ground_truth"]:
            out = session.call(c["name"], c["arguments"])
            if is_error(out):
                failures.append((task["id"], c, out))
    assert failures == []


def test_ground_truth_scores_one_and_doing_nothing_scores_zero_when_it_writes() -> None:
    writing = 0
    for task in all_tasks():
        gt = task["ground_truth"]
        assert reward(gt, gt) == 1.0
        writes = writes_state(gt)
        writing += writes
        assert reward([], gt) == (0.0 if writes else 1.0), task["id"]
        # A task whose answer is "do nothing" has an empty ground truth (or only no-ops).
        if not gt:
            assert not writes
    # 576 converted answers are non-empty; two of them reassign a customer to
    # the person who already owns it, so they change nothing. Plus 5 examples.
    assert writing == 574 + 5


# Arguments that identify *what* a call writes: swapping one for another valid
# value must change the outcome.
ALTERNATIVES = {
    "email_id": [r["email_id"] for r in pristine().emails],
    "event_id": [r["event_id"] for r in pristine().calendar_events],
    "task_id": [r["task_id"] for r in pristine().project_tasks],
    "customer_id": [r["customer_id"] for r in pristine().crm],
    "recipient": list(pristine().directory),
    "participant_email": list(pristine().directory),
    "assigned_to_email": sorted({r["assigned_to_email"] for r in pristine().project_tasks}),
}


def _mutated(gt: list[dict[str, str]]) -> list[dict[str, str]] | None:
    for n, c in enumerate(gt):
        args = json.loads(c["arguments"])
        for key in ALTERNATIVES:
            if key in args:
                pool = ALTERNATIVES[key]
                other = pool[(pool.index(args[key]) + 1) % len(pool)] if args[key] in pool else pool[0]
                changed = {**c, "arguments": json.dumps({**args, key: other})}
                return gt[:n] + [changed] + gt[n + 1 :]
    return None


def test_changing_one_id_or_address_of_a_writing_call_scores_zero() -> None:
    mutated = 0
    for task in all_tasks():
        gt = task["ground_truth"]
        if not writes_state(gt):
            continue
        wrong = _mutated(gt)
        if wrong is None:  # e.g. plots: nothing id-like to swap
            continue
        mutated += 1
        assert reward(wrong, gt) == 0.0, (task["id"], wrong)
    assert mutated > 400


def test_reading_and_failing_calls_do_not_matter() -> None:
    gt = [call("email_delete_email", email_id="00000479")]
    noisy = [
        call("email_search_emails", query="nadia"),
        {"name": "email_delete_email", "arguments": "{not json"},
        call("no_such_tool"),
        call("email_delete_email", email_id="99999999"),
        *gt,
        call("email_get_email_information_by_id", email_id="00000479", field="body"),
    ]
    assert reward(noisy, gt) == 1.0
    assert reward(noisy + [call("email_delete_email", email_id="00000478")], gt) == 0.0


def test_text_is_compared_case_insensitively_except_status_list_and_board() -> None:
    sent = [call("email_send_email", recipient="raj.patel@atlas.com", subject="Q4 Plan", body="See you at 10")]
    shouted = [call("email_send_email", recipient="RAJ.PATEL@atlas.com", subject="q4 PLAN", body="SEE YOU AT 10")]
    assert reward(shouted, sent) == 1.0
    notes = [call(UPDATE_CUSTOMER, customer_id="00000014", field="notes", new_value="Call back")]
    assert reward([{**notes[0], "arguments": notes[0]["arguments"].replace("Call back", "CALL BACK")}], notes) == 1.0
    # add_customer does not validate status, so its case reaches the database.
    lead = [call(ADD_CUSTOMER, customer_name="Ada", assigned_to_email="raj.patel@atlas.com", status="Lead")]
    assert reward([{**lead[0], "arguments": lead[0]["arguments"].replace("Lead", "lead")}], lead) == 0.0
    rename = {"task_id": "00000149", "field": "task_name"}
    task = [call("project_management_update_task", **rename, new_value="Polish UI")]
    assert reward([call("project_management_update_task", **rename, new_value="POLISH ui")], task) == 1.0


def test_states_equal_rules_on_raw_tables() -> None:
    base = WorkplaceSession().snapshot()

    def with_crm_row(row: dict[str, Any]) -> Any:
        table = base.customer_relationship_manager
        values = tuple(row.get(c) for c in table.columns)
        grown = TableState(table.columns, table.rows + (values,))
        return dataclasses.replace(base, customer_relationship_manager=grown)

    row = {"customer_id": "00000500", "customer_name": "Ada", "status": "Lead", "notes": "Hi"}
    assert states_equal(with_crm_row(row), with_crm_row({**row, "customer_name": "ADA", "notes": "hi"}))
    assert not states_equal(with_crm_row(row), with_crm_row({**row, "status": "LEAD"}))
    tasks = base.project_management

    def recased_task(column: str, text: str) -> Any:
        first = list(tasks.rows[0])
        first[tasks.columns.index(column)] = text
        rows = (tuple(first),) + tasks.rows[1:]
        return dataclasses.replace(base, project_management=TableState(tasks.columns, rows))

    assert tasks.rows[0][tasks.columns.index("list_name")] == "Backlog"
    assert states_equal(base, recased_task("task_name", "ADD ANIMATION TO CAROUSEL"))
    assert not states_equal(base, recased_task("list_name", "backlog"))
    assert not states_equal(base, recased_task("board", "front end"))
    # Row order does not matter; row multiplicity does.
    reordered = dataclasses.replace(base, email=TableState(base.email.columns, tuple(reversed(base.email.rows))))
    assert states_equal(base, reordered) and base != reordered
    doubled = dataclasses.replace(base, email=TableState(base.email.columns, base.email.rows + base.email.rows[:1]))
    assert not states_equal(base, doubled)


def test_plots_compare_as_a_multiset() -> None:
    span = {"time_min": "2023-11-01", "time_max": "2023-11-30", "plot_type": "bar"}
    a = call("analytics_create_plot", **span, value_to_plot="total_visits")
    b = call("analytics_create_plot", **span, value_to_plot="user_engaged")
    assert reward([b, a], [a, b]) == 1.0
    assert reward([a, a, b], [a, b]) == 0.0
    assert reward([a], [a, b]) == 0.0


def test_reward_for_session_matches_replaying_its_calls() -> None:
    gt = [call("calendar_delete_event", event_id="00000252")]
    good, bad = WorkplaceSession(), WorkplaceSession()
    good.call("calendar_search_events", {"query": "brainstorming"})
    good.call("calendar_delete_event", {"event_id": "00000252"})
    bad.call("calendar_delete_event", '{"event_id": "00000261"}')
    assert reward_for_session(good, gt) == reward(good.calls, gt) == 1.0
    assert reward_for_session(bad, gt) == reward(bad.calls, gt) == 0.0
    assert replay(good.calls).snapshot() == good.snapshot()


def test_ground_truth_state_is_cached_and_accepts_json_text() -> None:
    gt = [call("email_delete_email", email_id="00000123")]
    verifier.ground_truth_state(gt)
    hits = verifier._ground_truth_state.cache_info().hits
    assert reward([], json.dumps(gt)) == 0.0  # same ground truth, given as text
    assert reward(gt, gt) == 1.0
    assert verifier._ground_truth_state.cache_info().hits >= hits + 2


def test_writes_state() -> None:
    assert not writes_state([])
    assert not writes_state([call("email_search_emails", query="kofi")])
    assert not writes_state([call("email_delete_email", email_id="nope")])
    plot = call("analytics_create_plot", time_min="a", time_max="b", value_to_plot="total_visits", plot_type="bar")
    assert writes_state([plot])


def test_replay_ignores_malformed_entries() -> None:
    junk: list[Any] = [{"arguments": "{}"}, "junk", call("email_delete_email", email_id="00000479")]
    session = replay(junk)
    assert len(session.db.emails) == 499


@pytest.mark.parametrize("line_no", range(5))
def test_example_tasks(line_no: int) -> None:
    task = json.loads(EXAMPLE.read_text().splitlines()[line_no])
    gt = task["ground_truth"]
    assert writes_state(gt) and reward(gt, gt) == 1.0 and reward([], gt) == 0.0
    # Acting on the wrong record fails even with the right tool.
    wrong = _mutated(gt)
    assert wrong is not None and reward(wrong, gt) == 0.0
