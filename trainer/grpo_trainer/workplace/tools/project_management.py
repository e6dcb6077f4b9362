"""Project management toolkit: look up, search, create, delete and update tasks."""

from __future__ import annotations

import re
from typing import Any

from grpo_trainer.workplace.databases import PROJECT_COLUMNS
from grpo_trainer.workplace.tools._common import (
    Databases,
    Row,
    ToolSpec,
    find_row,
    matcher,
    next_id,
    remove_rows,
    require,
    string,
    tool,
)

LISTS = ("Backlog", "In Progress", "In Review", "Completed")
BOARDS = ("Back end", "Front end", "Design")

_EMAIL_SHAPE = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")

BAD_LIST = "List not valid. Please choose from: " + ", ".join(f"'{x}'" for x in LISTS) + "."
BAD_BOARD = "Board not valid. Please choose from: " + ", ".join(f"'{x}'" for x in BOARDS) + "."
BAD_ASSIGNEE = "Assignee email not valid. Please choose from the list of team members."


def _team(db: Databases) -> set[str]:
    # "Team members" are whoever currently has a task, so the set shrinks if
    # someone's last task is deleted (as in NeMo Gym).
    return {r["assigned_to_email"].lower() for r in db.project_tasks if isinstance(r["assigned_to_email"], str)}


def _keep(tasks: list[Row], column: str, pattern: str) -> list[Row]:
    matches = matcher(pattern)
    return [t for t in tasks if matches(t[column])]


@tool("project_management_get_task_information_by_id", string("task_id"), string("field"))
def get_task_information_by_id(db: Databases, task_id: str | None, field: str | None) -> dict[str, Any]:
    require(task_id, "Task ID not provided.")
    require(field, "Field not provided.")
    task = find_row(db.project_tasks, "task_id", task_id)
    require(task is not None, "Task not found.")
    assert task is not None and field is not None
    require(field in task, "Field not found.")
    return {field: task[field]}


@tool(
    "project_management_search_tasks",
    string("task_name"),
    string("assigned_to_email"),
    string("list_name"),
    string("due_date"),
    string("board"),
)
def search_tasks(
    db: Databases,
    task_name: str | None,
    assigned_to_email: str | None,
    list_name: str | None,
    due_date: str | None,
    board: str | None,
) -> list[Row]:
    require(any([task_name, assigned_to_email, list_name, due_date, board]), "No search parameters provided.")
    if assigned_to_email:
        require(_EMAIL_SHAPE.match(assigned_to_email), "Invalid email format for assigned_to_email.")
    tasks = list(db.project_tasks)
    # Text filters are case-insensitive regex searches, except the assignee,
    # which must equal the address (ignoring case). No pagination here: Gym
    # returns every match, possibly an empty list.
    if task_name:
        tasks = _keep(tasks, "task_name", task_name)
    if assigned_to_email:
        wanted = assigned_to_email.lower()
        tasks = [t for t in tasks if str(t["assigned_to_email"]).lower() == wanted]
    if list_name:
        tasks = _keep(tasks, "list_name", list_name)
    if due_date:
        tasks = _keep(tasks, "due_date", due_date)
    if board:
        tasks = _keep(tasks, "board", board)
    return [dict(t) for t in tasks]


@tool(
    "project_management_create_task",
    string("task_name"),
    string("assigned_to_email"),
    string("list_name"),
    string("due_date"),
    string("board"),
)
def create_task(
    db: Databases,
    task_name: str | None,
    assigned_to_email: str | None,
    list_name: str | None,
    due_date: str | None,
    board: str | None,
) -> str:
    require(all([task_name, assigned_to_email, list_name, due_date, board]), "Missing task details.")
    assert assigned_to_email is not None
    assignee = assigned_to_email.lower()
    require(assignee in _team(db), BAD_ASSIGNEE)
    # List and board names are case-sensitive (the verifier compares them
    # case-sensitively too).
    require(list_name in LISTS, BAD_LIST)
    require(board in BOARDS, BAD_BOARD)
    task_id = next_id(db.project_tasks, "task_id", pad=True)
    values = (task_id, task_name, assignee, list_name, due_date, board)
    db.project_tasks.append(dict(zip(PROJECT_COLUMNS, values, strict=True)))
    return task_id


@tool("project_management_delete_task", string("task_id"))
def delete_task(db: Databases, task_id: str | None) -> str:
    require(task_id, "Task ID not provided.")
    require(find_row(db.project_tasks, "task_id", task_id) is not None, "Task not found.")
    remove_rows(db.project_tasks, "task_id", task_id)
    return "Task deleted successfully."


@tool("project_management_update_task", string("task_id"), string("field"), string("new_value"))
def update_task(db: Databases, task_id: str | None, field: str | None, new_value: str | None) -> str:
    require(task_id and field and new_value, "Task ID, field, or new value not provided.")
    assert field is not None and new_value is not None
    if field == "assigned_to_email":
        new_value = new_value.lower()
        require(new_value in _team(db), BAD_ASSIGNEE)
    elif field == "board":
        require(new_value in BOARDS, BAD_BOARD)
    elif field == "list_name":
        require(new_value in LISTS, BAD_LIST)
    task = find_row(db.project_tasks, "task_id", task_id)
    require(task is not None, "Task not found.")
    assert task is not None
    # Any column may be overwritten, task_id included, as in Gym.
    require(field in PROJECT_COLUMNS, "Field not valid.")
    task[field] = new_value
    return "Task updated successfully."


TOOLS: tuple[ToolSpec, ...] = (
    get_task_information_by_id,
    search_tasks,
    create_task,
    delete_task,
    update_task,
)
