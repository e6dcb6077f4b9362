"""The workplace assistant as a TRL `environment_factory` environment.

TRL discovers an environment's tools from its public methods (signature +
Google-style docstring). We generate those methods from the 27 NeMo Gym tool
schemas, so the schema file stays the single source of truth and every call,
valid or not, reaches `WorkplaceSession.call`, which answers errors in NeMo
Gym's text form instead of raising.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from ..workplace.schemas import DOMAIN_TOOLS, TOOL_NAMES, TOOL_SCHEMAS
from ..workplace.session import WorkplaceSession
from ..workplace.verifier import reward_for_session

_JSON_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
ALL_TOOLS_KEY = "workplace_assistant_all"


def _schema(name: str) -> dict[str, Any]:
    for schema in TOOL_SCHEMAS:
        if schema["name"] == name:
            return schema
    raise KeyError(name)


def _make_tool_method(name: str) -> Callable[..., str]:
    schema = _schema(name)
    props: dict[str, Any] = schema["parameters"].get("properties", {})
    required = set(schema["parameters"].get("required", []))

    # The receiver is positional-only: a model that passes an argument named "self" gets the
    # session's "unexpected argument" answer instead of a TypeError that ends the whole run.
    def tool(self: WorkplaceToolEnv, /, **arguments: Any) -> str:
        return self._call(name, arguments)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    annotations: dict[str, Any] = {}
    # Required parameters first, as Python signatures demand.
    for pname in sorted(props, key=lambda p: p not in required):
        py_type = _JSON_TYPES.get(props[pname].get("type", "string"), str)
        if pname in required:
            params.append(inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, annotation=py_type))
            annotations[pname] = py_type
        else:
            params.append(inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=py_type | None))
            annotations[pname] = py_type | None
    annotations["return"] = str
    tool.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    tool.__annotations__ = annotations
    tool.__name__ = tool.__qualname__ = name
    arg_lines = "".join(f"    {p}: {props[p].get('description', p)}\n" for p in props)
    tool.__doc__ = schema["description"] + ("\n\nArgs:\n" + arg_lines if props else "")
    return tool


class WorkplaceToolEnv:
    """One rollout's isolated workplace: fresh databases on every `reset`."""

    reward_shaping: dict[str, float] | None = None

    def __init__(self) -> None:
        self._session = WorkplaceSession()
        self._ground_truth: list[dict[str, Any]] = []

    def reset(self, **row: Any) -> None:
        self._session = WorkplaceSession()
        ground_truth = row.get("ground_truth", "[]")
        self._ground_truth = json.loads(ground_truth) if isinstance(ground_truth, str) else list(ground_truth)
        return None

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        # TRL passes every declared parameter; None means "not given".
        given = {k: v for k, v in arguments.items() if v is not None}
        return self._session.call(name, given)

    @property
    def calls(self) -> list[dict[str, Any]]:
        return list(self._session.calls)

    def outcome(self) -> float:
        """NeMo Gym's binary reward: final databases equal the ground truth's."""
        return reward_for_session(self._session, self._ground_truth)

    def get_reward(self) -> float:
        outcome = self.outcome()
        shaping = self.reward_shaping
        if not shaping or outcome == 1.0:
            return outcome
        # Partial credit (opt-in): a valid call, and the right tools, earn a
        # little, so a model that has never solved a task still gets a signal.
        credit = 0.0
        calls = [c for c in self._session.calls if c["name"] in TOOL_NAMES]
        if calls:  # at least one well-formed call of a real tool
            credit += shaping["format_credit"]
        wanted = {c["name"] for c in self._ground_truth}
        if wanted:
            used = {c["name"] for c in calls}
            credit += shaping["tool_name_credit"] * len(wanted & used) / len(wanted)
        return credit


@functools.cache
def env_class(tool_set: str, shaping_key: tuple[tuple[str, float], ...] | None = None) -> type[WorkplaceToolEnv]:
    """A WorkplaceToolEnv subclass exposing one set of tools (cached: TRL pools instances by class)."""
    names = TOOL_NAMES if tool_set == ALL_TOOLS_KEY else DOMAIN_TOOLS[tool_set]
    methods = {name: _make_tool_method(name) for name in names}
    methods["reward_shaping"] = dict(shaping_key) if shaping_key else None
    class_name = "Workplace_" + tool_set.removeprefix("workplace_assistant_")
    return type(class_name, (WorkplaceToolEnv,), methods)


def tool_schemas_for(tool_set: str) -> list[dict[str, Any]]:
    """The tool list as apply_chat_template wants it (same schemas TRL derives)."""
    from transformers.utils import get_json_schema

    cls = env_class(tool_set)
    names = TOOL_NAMES if tool_set == ALL_TOOLS_KEY else DOMAIN_TOOLS[tool_set]
    return [get_json_schema(getattr(cls, name)) for name in names]


def tool_set_for(category: str, mode: str) -> str:
    """Which tools a task sees: its domain's (plus the directory) or all 27."""
    if mode == "all" or category not in DOMAIN_TOOLS:
        return ALL_TOOLS_KEY
    return category
