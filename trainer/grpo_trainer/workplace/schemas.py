"""What the model is shown: the 27 tool schemas and the system prompt.

The schemas are NeMo Gym's, extracted verbatim from its ``example.jsonl`` into
``data/tool_schemas.json`` so that prompts built here are byte-identical to
Gym's tasks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "tool_schemas.json"

# Treat as read-only: prompts for every task are built from these objects.
TOOL_SCHEMAS: list[dict[str, Any]] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
TOOL_NAMES: tuple[str, ...] = tuple(schema["name"] for schema in TOOL_SCHEMAS)

SYSTEM_PROMPT = (
    "Today's date is Thursday, 2023-11-30 and the current time is 23:59:00. "
    "Remember the current date and time when answering queries. "
    "Meetings must not start before 9am or end after 6pm."
)

CATEGORY_PREFIX = "workplace_assistant_"
DOMAINS = ("email", "calendar", "analytics", "project_management", "customer_relationship_manager")
MULTI_DOMAIN = "multi_domain"
DIRECTORY_TOOL = "company_directory_find_email_address"


def _domain_tools(domain: str) -> list[str]:
    # Every domain also gets the directory, which resolves names to addresses.
    return [DIRECTORY_TOOL] + [name for name in TOOL_NAMES if name.startswith(domain + "_")]


DOMAIN_TOOLS: dict[str, list[str]] = {
    **{CATEGORY_PREFIX + domain: _domain_tools(domain) for domain in DOMAINS},
    CATEGORY_PREFIX + MULTI_DOMAIN: list(TOOL_NAMES),
}

__all__ = [
    "CATEGORY_PREFIX",
    "DOMAINS",
    "DOMAIN_TOOLS",
    "MULTI_DOMAIN",
    "SYSTEM_PROMPT",
    "TOOL_NAMES",
    "TOOL_SCHEMAS",
]
