"""The 27 workplace tools, one module per toolkit, gathered into one registry.

Each tool is a plain function ``func(db, **arguments)`` wrapped in a
:class:`ToolSpec` that lists the parameters its JSON schema declares. A tool
either returns its result (str, dict or list) or raises :class:`ToolError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from grpo_trainer.workplace.tools import (
    analytics,
    calendar,
    company_directory,
    customer_relationship_manager,
    email,
    project_management,
)
from grpo_trainer.workplace.tools._common import Param, ToolError, ToolSpec

TOOLKITS: Mapping[str, tuple[ToolSpec, ...]] = MappingProxyType(
    {
        "company_directory": company_directory.TOOLS,
        "email": email.TOOLS,
        "calendar": calendar.TOOLS,
        "analytics": analytics.TOOLS,
        "project_management": project_management.TOOLS,
        "customer_relationship_manager": customer_relationship_manager.TOOLS,
    }
)

TOOLS: Mapping[str, ToolSpec] = MappingProxyType({spec.name: spec for specs in TOOLKITS.values() for spec in specs})

__all__ = ["TOOLKITS", "TOOLS", "Param", "ToolError", "ToolSpec"]
