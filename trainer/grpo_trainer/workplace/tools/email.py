"""Email toolkit: look up, search, send, delete, forward and reply."""

from __future__ import annotations

from typing import Any

from grpo_trainer.workplace.databases import CURRENT_TIME, EMAIL_COLUMNS
from grpo_trainer.workplace.tools._common import (
    Databases,
    Row,
    ToolSpec,
    find_row,
    integer,
    next_id,
    paginate,
    parse_timestamp,
    remove_rows,
    require,
    string,
    tool,
)


@tool("email_get_email_information_by_id", string("email_id"), string("field"))
def get_email_information_by_id(db: Databases, email_id: str | None, field: str | None) -> dict[str, Any]:
    require(email_id, "Email ID not provided.")
    require(field, "Field not provided.")
    email = find_row(db.emails, "email_id", email_id)
    require(email is not None, "Email not found.")
    assert email is not None
    require(field in email, f"Field '{field}' not found. Available fields: {', '.join(email)}")
    return {field: email[field]}


def _searchable_text(email: Row) -> str:
    # Missing values read as "nan" because Gym formats the pandas cells directly.
    parts = (email["subject"], email["body"], email["sender/recipient"])
    return " ".join("nan" if part is None else str(part) for part in parts).lower()


@tool(
    "email_search_emails",
    string("query", ""),
    string("date_min"),
    string("date_max"),
    integer("page", 1),
    integer("page_size", 5),
)
def search_emails(
    db: Databases, query: str, date_min: str | None, date_max: str | None, page: int, page_size: int
) -> dict[str, Any] | str:
    # Every whitespace-separated word must occur somewhere in subject, body or
    # address (plain substring, not regex), so word order does not matter.
    words = query.lower().split()
    hits = [dict(e) for e in db.emails if all(w in _searchable_text(e) for w in words)]
    hits.sort(key=lambda e: parse_timestamp(e["sent_datetime"], "sent_datetime"), reverse=True)
    # Bounds compare calendar days only, so both ends are inclusive.
    if date_min:
        low = parse_timestamp(date_min, "date_min").date()
        hits = [e for e in hits if parse_timestamp(e["sent_datetime"], "sent_datetime").date() >= low]
    if date_max:
        high = parse_timestamp(date_max, "date_max").date()
        hits = [e for e in hits if parse_timestamp(e["sent_datetime"], "sent_datetime").date() <= high]
    if not hits:
        require(page_size >= 1, f"page_size must be at least 1, got {page_size}")
        return "No emails found."
    return paginate(hits, page, page_size, "emails", "total_emails")


def _send(db: Databases, recipient: str | None, subject: Any, body: Any) -> None:
    require(recipient and subject and body, "Recipient, subject, or body not provided.")
    assert recipient is not None
    require("@" in recipient and "." in recipient, "Invalid recipient email address.")
    values = (next_id(db.emails, "email_id", pad=False), "outbox", recipient.lower(), subject, CURRENT_TIME, body)
    db.emails.append(dict(zip(EMAIL_COLUMNS, values, strict=True)))


@tool("email_send_email", string("recipient"), string("subject"), string("body"))
def send_email(db: Databases, recipient: str | None, subject: str | None, body: str | None) -> str:
    _send(db, recipient, subject, body)
    return "Email sent successfully."


@tool("email_delete_email", string("email_id"))
def delete_email(db: Databases, email_id: str | None) -> str:
    require(email_id, "Email ID not provided.")
    require(find_row(db.emails, "email_id", email_id) is not None, "Email not found.")
    remove_rows(db.emails, "email_id", email_id)
    return "Email deleted successfully."


@tool("email_forward_email", string("email_id"), string("recipient"))
def forward_email(db: Databases, email_id: str | None, recipient: str | None) -> str:
    require(email_id and recipient, "Email ID or recipient not provided.")
    assert recipient is not None
    # Gym validates the address before looking the email up; keep that order
    # so the model sees the same first complaint.
    require("@" in recipient and "." in recipient, "Invalid recipient email address.")
    email = find_row(db.emails, "email_id", email_id)
    require(email is not None, "Email not found.")
    assert email is not None
    _send(db, recipient, f"FW: {email['subject']}", email["body"])
    return "Email forwarded successfully."


@tool("email_reply_email", string("email_id"), string("body"))
def reply_email(db: Databases, email_id: str | None, body: str | None) -> str:
    require(email_id and body, "Email ID or body not provided.")
    email = find_row(db.emails, "email_id", email_id)
    require(email is not None, "Email not found.")
    assert email is not None
    # The reply goes to the stored counterpart whether the original was
    # received (sender) or sent (recipient).
    _send(db, email["sender/recipient"], f"RE: {email['subject']}", body)
    return "Email replied successfully."


TOOLS: tuple[ToolSpec, ...] = (
    get_email_information_by_id,
    search_emails,
    send_email,
    delete_email,
    forward_email,
    reply_email,
)
