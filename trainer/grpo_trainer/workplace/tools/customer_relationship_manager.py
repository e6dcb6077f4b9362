"""Customer relationship manager toolkit: search, update, add and delete customers."""

from __future__ import annotations

from typing import Any

from grpo_trainer.workplace.databases import CRM_COLUMNS
from grpo_trainer.workplace.tools._common import (
    Databases,
    ToolSpec,
    find_row,
    integer,
    matcher,
    next_id,
    paginate,
    remove_rows,
    require,
    string,
    tool,
)

STATUSES = ("Qualified", "Won", "Lost", "Lead", "Proposal")
PRODUCTS = ("Software", "Hardware", "Services", "Consulting", "Training")
UPDATABLE_FIELDS = (
    "customer_name",
    "assigned_to_email",
    "customer_email",
    "customer_phone",
    "last_contact_date",
    "product_interest",
    "status",
    "notes",
    "follow_up_by",
)

_TEXT_FILTERS = ("customer_name", "customer_email", "product_interest", "status", "assigned_to_email")
# (argument, column, keep row if column value compared to argument is ...)
_RANGE_FILTERS = (
    ("last_contact_date_min", "last_contact_date", 1),
    ("last_contact_date_max", "last_contact_date", -1),
    ("follow_up_by_min", "follow_up_by", 1),
    ("follow_up_by_max", "follow_up_by", -1),
)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _within(value: Any, bound: str, direction: int) -> bool:
    # Plain string comparison, as in Gym: stored values look like
    # "2023-11-30 23:59:00", so a bare date bound "2023-11-30" sorts before
    # every time on that same day.
    if not isinstance(value, str):
        return False
    return value >= bound if direction > 0 else value <= bound


@tool(
    "customer_relationship_manager_search_customers",
    string("customer_name"),
    string("customer_email"),
    string("product_interest"),
    string("status"),
    string("assigned_to_email"),
    string("last_contact_date_min"),
    string("last_contact_date_max"),
    string("follow_up_by_min"),
    string("follow_up_by_max"),
    integer("page", 1),
    integer("page_size", 5),
)
def search_customers(db: Databases, page: int, page_size: int, **filters: str | None) -> dict[str, Any] | str:
    require(
        any(filters.values()),
        "No search parameters provided. Please provide at least one parameter.",
    )
    customers = list(db.crm)
    for column in _TEXT_FILTERS:
        pattern = filters[column]
        if pattern:
            matches = matcher(pattern)
            customers = [c for c in customers if matches(c[column])]
    for argument, column, direction in _RANGE_FILTERS:
        bound = filters[argument]
        if bound:
            customers = [c for c in customers if _within(c[column], bound, direction)]
    require(page_size >= 1, f"page_size must be at least 1, got {page_size}")
    if not customers:
        return "No customers found."
    # Table order, no sorting.
    return paginate([dict(c) for c in customers], page, page_size, "customers", "total_customers")


@tool("customer_relationship_manager_update_customer", string("customer_id"), string("field"), string("new_value"))
def update_customer(db: Databases, customer_id: str | None, field: str | None, new_value: str | None) -> str:
    require(customer_id and field and new_value, "Customer ID, field, or new value not provided.")
    assert field is not None and new_value is not None
    if field == "status":
        require(new_value in STATUSES, f"Status not valid. Please choose from: {_quoted(STATUSES)}")
    if field == "product_interest":
        require(new_value in PRODUCTS, f"Product interest not valid. Please choose from: {_quoted(PRODUCTS)}")
    if field in ("customer_email", "assigned_to_email"):
        new_value = new_value.lower()
    customer = find_row(db.crm, "customer_id", customer_id)
    require(customer is not None, "Customer not found.")
    assert customer is not None
    # Gym accepts any existing column here, customer_id included.
    require(field in CRM_COLUMNS, f"Field not valid. Please choose from: {_quoted(UPDATABLE_FIELDS)}")
    customer[field] = new_value
    return "Customer updated successfully."


@tool(
    "customer_relationship_manager_add_customer",
    string("customer_name"),
    string("assigned_to_email"),
    string("status"),
    string("customer_email"),
    string("customer_phone"),
    string("last_contact_date"),
    string("product_interest"),
    string("notes", ""),
    string("follow_up_by"),
)
def add_customer(
    db: Databases,
    customer_name: str | None,
    assigned_to_email: str | None,
    status: str | None,
    customer_email: str | None,
    customer_phone: str | None,
    last_contact_date: str | None,
    product_interest: str | None,
    notes: str,
    follow_up_by: str | None,
) -> str:
    require(
        customer_name and assigned_to_email and status,
        "Please provide all required fields: customer_name, assigned_to_email, status.",
    )
    assert assigned_to_email is not None
    # Unlike update_customer, Gym does not check status or product values here.
    row = {
        "customer_id": next_id(db.crm, "customer_id", pad=True),
        "assigned_to_email": assigned_to_email.lower(),
        "customer_name": customer_name,
        "customer_email": customer_email.lower() if customer_email else customer_email,
        "customer_phone": customer_phone,
        "last_contact_date": last_contact_date,
        "product_interest": product_interest,
        "status": status,
        "follow_up_by": follow_up_by,
        "notes": notes,
    }
    db.crm.append({column: row[column] for column in CRM_COLUMNS})
    return row["customer_id"]


@tool("customer_relationship_manager_delete_customer", string("customer_id"))
def delete_customer(db: Databases, customer_id: str | None) -> str:
    require(customer_id, "Customer ID not provided.")
    require(find_row(db.crm, "customer_id", customer_id) is not None, "Customer not found.")
    remove_rows(db.crm, "customer_id", customer_id)
    return "Customer deleted successfully."


TOOLS: tuple[ToolSpec, ...] = (
    search_customers,
    update_customer,
    add_customer,
    delete_customer,
)
