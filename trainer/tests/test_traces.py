"""SFT warm-start traces of the real training split (prepare-data's train.jsonl, 552 tasks).

Two full builds (about 15 s each on the 2-core machine, plus ~8 s to load
SmolLM2's tokenizer once): the CPU config's settings (domain tool lists,
max_tool_steps 2, prefilled tool call, every turn rendered and parsed back) and
no step limit with all 27 tools. Every kept trace is re-checked here
independently of the builder's own verification.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from grpo_trainer import cli
from grpo_trainer.data.convert_workbench import write_split
from grpo_trainer.data.tasks import Task, load_tasks
from grpo_trainer.data.trace_lookups import ID_ARGUMENTS
from grpo_trainer.data.trace_recipes import condition_agrees, recipe_reads
from grpo_trainer.data.traces import (
    WRITE_TOOLS,
    Trace,
    TraceReport,
    build_traces,
    chat_tokenizer,
    offered_tools,
    query_of,
    verify_trace,
)
from grpo_trainer.workplace.schemas import TOOL_NAMES
from grpo_trainer.workplace.verifier import reward

from .conftest import CPU_CONFIG

STEP_LIMIT = "needs more tool calls than max_tool_steps (2)"


@pytest.fixture(scope="module")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("split")
    write_split(out, 0.2)
    return out / "train.jsonl"


@pytest.fixture(scope="module")
def tasks(train_file: Path) -> dict[object, Task]:
    loaded = load_tasks(train_file)
    assert len(loaded) == 552
    return {t.id: t for t in loaded}


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return chat_tokenizer(True)  # the CPU config's prefill_tool_call: true


@pytest.fixture(scope="module")
def cpu_report(tasks: dict[object, Task], tokenizer: object) -> TraceReport:
    return build_traces(list(tasks.values()), "domain", 2, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def unlimited_report(tasks: dict[object, Task]) -> TraceReport:
    return build_traces(list(tasks.values()), "all", None)


def _reports(cpu_report: TraceReport, unlimited_report: TraceReport) -> list[TraceReport]:
    return [cpu_report, unlimited_report]


def test_coverage_is_what_we_report(cpu_report: TraceReport, unlimited_report: TraceReport) -> None:
    full = unlimited_report.summary()
    assert full["tasks"] == 552 and full["write_tasks"] == 455
    assert full["failed_verification"] == 0
    assert full["traced"] >= 538  # measured 540
    assert full["write_tasks_traced"] >= 0.97 * full["write_tasks"]  # measured 443 / 455
    assert full["read_only_traced"] == full["read_only_tasks"]  # 97 / 97
    assert set(full["skipped"]) <= {"conditional query: no recipe reads its condition",
                                    "subject: not in the prompt and no lookup reveals it"}
    assert full["skipped"]["conditional query: no recipe reads its condition"] == 10  # "the fewest overdue tasks"

    cpu = cpu_report.summary()
    assert cpu["failed_verification"] == 0
    assert cpu["traced"] >= 295  # measured 300
    assert cpu["write_tasks_traced"] >= 0.45 * cpu["write_tasks"]  # measured 211 / 455
    assert cpu["skipped"][STEP_LIMIT] >= 235  # measured 240: most writes need a lookup and more than one write
    for category in ("analytics", "calendar"):
        counts = cpu["by_category"]["workplace_assistant_" + category]
        assert counts["traced"] >= 0.75 * counts["tasks"]  # measured 81/96 and 70/88


def test_every_trace_replays_to_reward_one(tasks: dict[object, Task], cpu_report: TraceReport,
                                           unlimited_report: TraceReport) -> None:
    for report in _reports(cpu_report, unlimited_report):
        for trace in report.traces:
            task = tasks[trace.task_id]
            calls = [{"name": n, "arguments": json.dumps(a)} for n, a in trace.calls]
            assert reward(calls, task.ground_truth) == 1.0, trace.task_id


def test_traces_are_rollout_conversations(tasks: dict[object, Task], cpu_report: TraceReport,
                                          unlimited_report: TraceReport) -> None:
    for report, mode in ((cpu_report, "domain"), (unlimited_report, "all")):
        for trace in report.traces:
            task = tasks[trace.task_id]
            assert trace.messages[: len(task.messages)] == task.messages
            assert trace.tools == offered_tools(task.category, mode)
            offered = {t["function"]["name"] for t in trace.tools}  # get_json_schema: {type, function}
            turns = trace.messages[len(task.messages):]
            for call, result in zip(turns[:-1:2], turns[1:-1:2], strict=True):
                (tool_call,) = call["tool_calls"]
                assert call["role"] == "assistant" and isinstance(tool_call["function"]["arguments"], dict)
                assert result["role"] == "tool" and result["name"] == tool_call["function"]["name"] in offered
            assert turns[-1]["role"] == "assistant" and not turns[-1].get("tool_calls") and turns[-1]["content"]
            assert trace.to_json()["tool_calls"] == len(trace.calls) >= 1


def test_training_and_evaluation_rollouts_see_the_same_tokens(cpu_report: TraceReport, tokenizer: object) -> None:
    """TRL's tool loop extends a rollout by concatenation (prompt + generated turn + its tool-result suffix);
    the evaluation runner re-renders the parsed conversation each turn. For a model that writes each turn
    as the template renders it (what the warm start teaches), both must feed the model the same tokens,
    or GRPO would optimise one conversation and validation measure another."""
    from trl import GRPOTrainer
    from trl.chat_template_utils import is_chat_template_prefix_preserving

    from grpo_trainer.rollout.episodes import turn_prompt_ids

    assert is_chat_template_prefix_preserving(tokenizer)  # else TRL swaps in a template of its own
    trl_loop = SimpleNamespace(processing_class=tokenizer, _tokenizer=tokenizer, chat_template=None,
                               chat_template_kwargs={}, _is_vlm=False)
    eos = tokenizer.eos_token_id

    def render(messages: list[dict], tools: list, generation_prompt: bool) -> list[int]:
        return tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=generation_prompt,
                                             tokenize=True, return_dict=True)["input_ids"]

    checked = 0
    for trace in cpu_report.traces:
        turn = next(i for i, m in enumerate(trace.messages) if m["role"] == "assistant")
        context = render(trace.messages[:turn], trace.tools, True)  # TRL's prompt_ids
        while trace.messages[turn].get("tool_calls"):
            prompt = render(trace.messages[:turn], trace.tools, True)
            rendered = render(trace.messages[:turn + 1], trace.tools, False)
            assert rendered[:len(prompt)] == prompt
            generated = rendered[len(prompt):]
            generated = generated[:generated.index(eos) + 1]
            results = turn + 1
            while trace.messages[results]["role"] == "tool":
                results += 1
            context = context + generated + GRPOTrainer._get_tool_suffix_ids(trl_loop, trace.messages[turn + 1:results])
            assert context == turn_prompt_ids(tokenizer, trace.messages[:results], trace.tools), trace.task_id
            checked += 1
            turn = results
    assert checked >= len(cpu_report.traces)


def test_no_trace_exceeds_max_tool_steps(cpu_report: TraceReport) -> None:
    assert cpu_report.traces and max(len(t.calls) for t in cpu_report.traces) <= 2


def test_ids_are_looked_up_before_they_are_written(tasks: dict[object, Task], unlimited_report: TraceReport,
                                                   cpu_report: TraceReport) -> None:
    checked = 0
    for trace in unlimited_report.traces + cpu_report.traces:
        query = query_of(tasks[trace.task_id])
        outputs: list[str] = []
        for message in trace.messages:
            if message["role"] == "tool":
                outputs.append(message["content"])
                continue
            for call in message.get("tool_calls") or []:
                name, arguments = call["function"]["name"], call["function"]["arguments"]
                if name not in WRITE_TOOLS:
                    continue
                for key in ID_ARGUMENTS:
                    value = arguments.get(key)
                    if value and value not in query:
                        checked += 1
                        assert any(f'"{key}":"{value}"' in o for o in outputs), (trace.task_id, key, value)
    assert checked >= 550  # measured 556 writes of an id the prompt does not hold, over both builds


def test_condition_reads_agree_with_the_ground_truth(tasks: dict[object, Task]) -> None:
    verdicts = []
    for task in tasks.values():
        reads, _, _ = recipe_reads(query_of(task), set(TOOL_NAMES))
        verdicts.append(condition_agrees(query_of(task), reads, bool(task.ground_truth)))
    assert False not in verdicts
    assert verdicts.count(True) >= 85  # measured 87 checkable conditions (thresholds, "haven't met", overdue)


def _a_trace(report: TraceReport, tasks: dict[object, Task], want: str) -> Trace:
    for trace in report.traces:
        names = [n for n, _ in trace.calls]
        if want in names and names[0] != want:
            return trace
    raise AssertionError(f"no trace that looks something up before {want}")


def test_verification_rejects_wrong_traces(tasks: dict[object, Task], cpu_report: TraceReport,
                                           tokenizer: object) -> None:
    trace = _a_trace(cpu_report, tasks, "email_delete_email")
    task = tasks[trace.task_id]
    kwargs = {"tools_mode": "domain", "max_tool_steps": 2, "tokenizer": tokenizer}
    assert verify_trace(trace, task, **kwargs) == []
    base = len(task.messages)

    no_lookup = Trace(trace.task_id, trace.category, trace.tools, trace.messages[:base] + trace.messages[base + 2:])
    assert any("was not revealed" in p for p in verify_trace(no_lookup, task, **kwargs))

    wrong_id = copy.deepcopy(trace)
    write = wrong_id.messages[-3]["tool_calls"][0]["function"]["arguments"]
    write["email_id"] = "00000001"
    problems = verify_trace(wrong_id, task, **kwargs)
    assert "replay does not reach reward 1" in problems

    forged = copy.deepcopy(trace)
    forged.messages[base + 1]["content"] = '{"emails": []}'
    assert any("differs from a replay" in p for p in verify_trace(forged, task, **kwargs))

    too_long = Trace(trace.task_id, trace.category, trace.tools,
                     trace.messages[: base + 2] + trace.messages[base:])
    assert any("max_tool_steps" in p for p in verify_trace(too_long, task, **kwargs))

    unoffered = copy.deepcopy(trace)
    unoffered.messages[base]["tool_calls"][0]["function"]["name"] = "calendar_search_events"
    assert any("does not offer" in p for p in verify_trace(unoffered, task, **kwargs))


def test_cli_writes_traces_and_a_report(train_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "traces.jsonl"
    code = cli.main(["build-traces", "--tasks", str(train_file), "--out", str(out), "--config", str(CPU_CONFIG),
                     "--max-examples", "5"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["traced"] == 5 and summary["max_tool_steps"] == 2 and summary["tools_mode"] == "domain"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    for row in rows:
        assert set(row) == {"task_id", "category", "tools", "messages", "tool_calls"}
        assert row["category"] != "workplace_assistant_multi_domain"  # the CPU config's category filter
        assert 1 <= row["tool_calls"] <= 2


def test_cli_rejects_a_bad_tasks_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text("{not json\n")
    code = cli.main(["build-traces", "--tasks", str(bad), "--out", str(tmp_path / "t.jsonl"), "--no-render-check"])
    assert code == cli.EXIT_INVALID
    assert str(bad) in capsys.readouterr().err
