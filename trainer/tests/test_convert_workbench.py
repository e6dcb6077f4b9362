"""WorkBench -> NeMo Gym JSONL conversion and the stratified split."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from grpo_trainer.data import convert_workbench as cw
from grpo_trainer.data.tasks import load_tasks
from grpo_trainer.workplace.databases import CSV_DIR
from grpo_trainer.workplace.schemas import SYSTEM_PROMPT, TOOL_SCHEMAS

EXAMPLE = [json.loads(line) for line in (CSV_DIR.parent / "example.jsonl").read_text().splitlines()]
CATEGORY_SIZES = {
    "workplace_assistant_analytics": 120,
    "workplace_assistant_calendar": 110,
    "workplace_assistant_customer_relationship_manager": 80,
    "workplace_assistant_email": 90,
    "workplace_assistant_multi_domain": 210,
    "workplace_assistant_project_management": 80,
}


@lru_cache(maxsize=1)
def rows() -> list[dict[str, Any]]:
    return cw.load_workbench()


def by_query(query: str) -> dict[str, Any]:
    (row,) = [r for r in rows() if cw.query_of(r) == query]
    return row


def args(call: dict[str, str]) -> dict[str, Any]:
    return json.loads(call["arguments"])


def test_rows_have_nemo_gyms_shape() -> None:
    converted = rows()
    assert len(converted) == 690
    assert [r["id"] for r in converted] == list(range(690))
    assert Counter(r["category"] for r in converted) == CATEGORY_SIZES
    example = EXAMPLE[0]
    for row in converted:
        assert list(row) == list(example)
        params = row["responses_create_params"]
        assert list(params) == list(example["responses_create_params"])
        assert params["tools"] == TOOL_SCHEMAS == example["responses_create_params"]["tools"]
        assert params["input"][0] == example["responses_create_params"]["input"][0]
        assert params["input"][0]["content"] == SYSTEM_PROMPT
        assert params["input"][1]["role"] == "user" and params["input"][1]["content"]
        assert params["parallel_tool_calls"] is False and params["temperature"] == 1.0
        assert row["environment_name"] == "workplace_assistant"
        for c in row["ground_truth"]:
            assert set(c) == {"name", "arguments"} and isinstance(c["arguments"], str)
            assert all(isinstance(v, str) for v in args(c).values())


def test_json_lines_are_formatted_like_gyms(tmp_path: Path) -> None:
    cw.write_split(tmp_path)
    line = (tmp_path / "train.jsonl").read_text().splitlines()[0]
    assert line == json.dumps(json.loads(line))
    assert line.startswith('{"id": 0, "responses_create_params": {"input": [{"role": "system", "content": "Today')


def test_parse_call() -> None:
    assert cw.parse_call('email.delete_email.func(email_id="00000479")') == {
        "name": "email_delete_email",
        "kwargs": {"email_id": "00000479"},
    }
    answer = """['customer_relationship_manager.update_customer.func(customer_id="00000095", new_value="Won")']"""
    gt = cw.parse_answer(answer)
    assert gt == [
        {
            "name": "customer_relationship_manager_update_customer",
            "arguments": '{"customer_id": "00000095", "new_value": "Won"}',
        }
    ]
    assert cw.parse_answer("[]") == []


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os").system("echo hi")',
        'email.send_email.func(body=open("/etc/passwd").read())',
        'email.delete_email("00000479")',
        'email.delete_email.func(**{"email_id": "1"})',
        "email.delete_email.func(",
        "email.func(x='1')",
    ],
)
def test_parse_call_refuses_anything_but_literal_keyword_calls(text: str) -> None:
    with pytest.raises(cw.ConversionError):
        cw.parse_call(text)


def test_escaped_newlines_become_real_ones_as_in_workbench() -> None:
    # WorkBench eval()s its answers, so "\\n" inside a call is a newline.
    row = by_query(
        "Send an email to lena saying 'lena,\\n\\nI've been assigned 'Develop prototype for report generation'. "
        "Excited to work on this and confident it will greatly improve our backend efficiency.\\n\\nCheers,\\n\\nSam' "
        "and title it 'Task Update on Create wireframe for homepage'"
    )
    body = args(row["ground_truth"][0])["body"]
    assert body.startswith("lena,\n\nI've been assigned") and "\\n" not in body


def test_open_ended_plots_end_on_gyms_last_day() -> None:
    since = by_query("Can you make a bar chart of total visits since November 21?")
    assert args(since["ground_truth"][0]) == {
        "time_min": "2023-11-21",
        "time_max": "2023-11-30",
        "value_to_plot": "total_visits",
        "plot_type": "bar",
    }
    one_day = by_query("please plot the distribution of the engaged users metric on November 29")
    assert args(one_day["ground_truth"][0])["time_max"] == "2023-11-29"
    plots = [c for r in rows() for c in r["ground_truth"] if c["name"] == "analytics_create_plot"]
    ends = Counter(args(c)["time_max"] for c in plots)
    assert ends["2023-11-29"] == 1 and ends["2023-11-30"] > 70


def test_answers_replaced_for_gyms_analytics_data() -> None:
    assert len(cw.GYM_DATA_ANSWERS) == 14
    for query, answer in cw.GYM_DATA_ANSWERS.items():
        assert by_query(query)["ground_truth"] == cw.parse_answer(repr(answer))
    flipped_to_empty = by_query(
        "if total visits grew by more than engaged users since Saturday, make a line plot of both since then"
    )
    assert flipped_to_empty["ground_truth"] == []


def test_split_is_stratified_and_rounds_half_up() -> None:
    train, validation = cw.split(rows(), 0.2)
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in validation)
    assert len(train) + len(validation) == 690
    val_counts = Counter(r["category"] for r in validation)
    assert val_counts == {k: round(n * 0.2) for k, n in CATEGORY_SIZES.items()}
    assert sum(val_counts.values()) == 138
    assert [r["id"] for r in train] == sorted(r["id"] for r in train)
    # 0.25 * 90 = 22.5 rounds up, not to even.
    assert Counter(r["category"] for r in cw.split(rows(), 0.25)[1])["workplace_assistant_email"] == 23
    # Tiny fractions still hold out one task per category.
    assert Counter(r["category"] for r in cw.split(rows(), 0.001)[1]) == {k: 1 for k in CATEGORY_SIZES}


def test_split_depends_only_on_query_hashes() -> None:
    train, validation = cw.split(rows(), 0.2)
    shuffled = list(rows())
    random.Random(7).shuffle(shuffled)
    assert cw.split(shuffled, 0.2) == (train, validation)
    email = [r for r in rows() if r["category"] == "workplace_assistant_email"]
    ranked = sorted(email, key=lambda r: hashlib.sha256(cw.query_of(r).encode()).hexdigest())
    email_validation = [r for r in validation if r["category"] == "workplace_assistant_email"]
    assert email_validation == sorted(ranked[:18], key=lambda r: r["id"])
    salted_train, salted_val = cw.split(rows(), 0.2, seed=1)
    assert {r["id"] for r in salted_val} != {r["id"] for r in validation}
    assert Counter(r["category"] for r in salted_val) == Counter(r["category"] for r in validation)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            cw.split(rows(), bad)


def test_write_split_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    first = cw.write_split(tmp_path / "a")
    second = cw.write_split(tmp_path / "b")
    assert first == second
    for name in ("train.jsonl", "validation.jsonl", "split_manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for name, digest in first["sha256"].items():
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest() == digest
    assert first["counts"]["workplace_assistant_multi_domain"] == {"train": 168, "validation": 42}
    assert first["totals"] == {"train": 552, "validation": 138}
    assert first["val_fraction"] == 0.2
    assert json.loads((tmp_path / "a" / "split_manifest.json").read_text()) == first
    train = load_tasks(tmp_path / "a" / "train.jsonl")
    validation = load_tasks(tmp_path / "a" / "validation.jsonl")
    assert len(train) == 552 and len(validation) == 138


def test_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cw.main(["--out-dir", str(tmp_path), "--val-fraction", "0.1"]) == 0
    manifest = json.loads((tmp_path / "split_manifest.json").read_text())
    assert manifest["val_fraction"] == 0.1 and manifest["totals"]["validation"] == 69
    assert json.loads(capsys.readouterr().out)["totals"] == manifest["totals"]


def test_bad_source_rows_name_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "email_queries_and_answers.csv").write_text(
        "query,answer,base_template,chosen_template,domains\n"
        "\"ok\",\"[]\",t,t,\"['email']\"\n"
        "\"bad\",\"['os.system.func(cmd=__import__(\"\"os\"\"))']\",t,t,\"['email']\"\n"
    )
    with pytest.raises(cw.ConversionError, match=r"email_queries_and_answers\.csv:3"):
        cw.load_workbench(source)
