"""Company directory: look up colleagues' email addresses by (part of) a name."""

from __future__ import annotations

from grpo_trainer.workplace.tools._common import Databases, ToolSpec, matcher, require, string, tool


@tool("company_directory_find_email_address", string("name", ""))
def find_email_address(db: Databases, name: str) -> list[str]:
    require(name != "", "Name not provided.")
    # An empty list (no match) is a normal answer, not an error.
    matches = matcher(name.lower())
    return [address for address in db.directory if matches(address)]


TOOLS: tuple[ToolSpec, ...] = (find_email_address,)
