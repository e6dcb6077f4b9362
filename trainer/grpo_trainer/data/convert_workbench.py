"""Convert WorkBench's 690 queries into NeMo Gym workplace_assistant JSONL.

Each WorkBench row (``query``, ``answer`` = a Python-literal list of calls such
as ``email.delete_email.func(email_id="00000479")``) becomes one line shaped
exactly like NeMo Gym's ``example.jsonl``: ``id``, ``responses_create_params``
(system prompt + query, the 27 tool schemas, ``parallel_tool_calls: false``,
``temperature: 1.0``), ``ground_truth`` (``[{name, arguments-JSON}]``),
``category`` and ``environment_name``. Calls are parsed with ``ast``; nothing
is evaluated.

Dates. WorkBench's clock stood at 2023-11-30 00:00, so its analytics data and
every "since <day>" / "in the last N weeks" plot ended on 2023-11-29. NeMo Gym
moved the clock to 23:59 that day and its analytics data include visits on
2023-11-30, so such open-ended plots end on 2023-11-30 there; we rewrite those
end dates accordingly. Plots of one named day keep that day. Nothing else in
the answers depends on the clock (the CRM times Gym added are all 23:59 of the
same dates).

Answers that depend on the analytics data. Gym's analytics table differs from
WorkBench's (some visits moved, 2023-11-30 added), and "the current value" of a
metric is now the 30th's. We re-evaluated every data-dependent analytics
condition in the 690 queries (190: 110 threshold checks, 80 growth /
most-popular-source / source-comparison checks) on both data sets; on
WorkBench's data the evaluation reproduces WorkBench's answers, on Gym's data 14
outcomes flip (no threshold check among them). Those 14 answers are replaced by
:data:`GYM_DATA_ANSWERS`, read from ``gym_data_answers.json`` next to this
module and written in WorkBench's call syntax. (Ten multi-domain WorkBench
answers contradict their own query text, e.g. they delete leads "if X was
more than N" although it never was; and seven customer-relationship queries ask
to "move" customers "to lost" where their answers, made from a "Delete all of ..."
template, delete them: ids 292-298, of which 294 and 295 fall in validation at
the default split, and 293 and 296 match no customer. They are kept as WorkBench
has them, so accuracies stay comparable with WorkBench's.)

Split. Per category, rows are ordered by the SHA-256 of their query text (salted
with ``f"{seed}:"`` when a seed is given) and the first
``round(n * val_fraction)`` rows, rounding halves up and at least one, go to
validation. The result never depends on file order, and adding or removing a
query moves at most one other query across the cut.

Usage: ``python -m grpo_trainer.data.convert_workbench --out-dir DIR [--val-fraction 0.2] [--seed S]``
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpo_trainer.workplace.schemas import CATEGORY_PREFIX, SYSTEM_PROMPT, TOOL_SCHEMAS

WORKBENCH_DIR = (
    Path(__file__).resolve().parent.parent / "workplace" / "data" / "workbench" / "queries_and_answers"
)
FILE_SUFFIX = "_queries_and_answers.csv"
ENVIRONMENT_NAME = "workplace_assistant"
COLUMNS = ("query", "answer", "base_template", "chosen_template", "domains")

WORKBENCH_LAST_DAY = "2023-11-29"
GYM_LAST_DAY = "2023-11-30"

# query -> answer under NeMo Gym's analytics data (see the module docstring), kept as
# data next to this module: WorkBench call strings, as in its CSV files.
GYM_DATA_ANSWERS_FILE = Path(__file__).with_name("gym_data_answers.json")


def _load_gym_data_answers(path: Path = GYM_DATA_ANSWERS_FILE) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8"))["answers"]:
        query, calls = entry["query"], entry["answer"]
        if query in answers or not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
            raise ValueError(f"{path}: duplicate query or an answer that is not a list of call strings: {query!r}")
        answers[query] = calls
    return answers


GYM_DATA_ANSWERS: dict[str, list[str]] = _load_gym_data_answers()

Row = dict[str, Any]


class ConversionError(ValueError):
    """A WorkBench row that cannot be converted faithfully."""


def _dotted_name(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ConversionError("call target is not a dotted name")
    parts.append(node.id)
    return ".".join(reversed(parts))


def parse_call(text: str) -> dict[str, Any]:
    """``toolkit.tool.func(k="v", ...)`` -> ``{"name": "toolkit_tool", "kwargs": {...}}``."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ConversionError(f"not a call: {text!r} ({exc.msg})") from None
    if not isinstance(node, ast.Call) or node.args:
        raise ConversionError(f"expected keyword-only call, got {text!r}")
    target = _dotted_name(node.func).split(".")
    if len(target) != 3 or target[2] != "func":
        raise ConversionError(f"expected <toolkit>.<tool>.func(...), got {text!r}")
    kwargs: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ConversionError(f"**kwargs are not supported: {text!r}")
        # literal_eval accepts only literals, so a crafted answer cannot run code.
        try:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise ConversionError(f"argument {keyword.arg!r} is not a literal in {text!r}") from None
    return {"name": f"{target[0]}_{target[1]}", "kwargs": kwargs}


def adapt_dates(call: dict[str, Any], base_template: str) -> dict[str, Any]:
    """Move open-ended plot ranges from WorkBench's last day to NeMo Gym's."""
    kwargs = call["kwargs"]
    open_ended = "since" in base_template or "last" in base_template
    if call["name"] == "analytics_create_plot" and open_ended and kwargs.get("time_max") == WORKBENCH_LAST_DAY:
        return {**call, "kwargs": {**kwargs, "time_max": GYM_LAST_DAY}}
    return call


def parse_answer(answer: str, base_template: str = "") -> list[dict[str, str]]:
    """WorkBench ``answer`` cell -> NeMo Gym ``ground_truth`` list."""
    try:
        calls = ast.literal_eval(answer)
    except (ValueError, SyntaxError) as exc:
        raise ConversionError(f"answer is not a Python literal list: {exc}") from None
    if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
        raise ConversionError("answer must be a list of call strings")
    ground_truth = []
    for text in calls:
        call = adapt_dates(parse_call(text), base_template)
        ground_truth.append({"name": call["name"], "arguments": json.dumps(call["kwargs"])})
    return ground_truth


def category_for(domain: str) -> str:
    return CATEGORY_PREFIX + domain


def gym_row(task_id: int, query: str, ground_truth: list[dict[str, str]], category: str) -> Row:
    return {
        "id": task_id,
        "responses_create_params": {
            "input": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": query},
            ],
            "tools": TOOL_SCHEMAS,
            "parallel_tool_calls": False,
            "temperature": 1.0,
        },
        "ground_truth": ground_truth,
        "category": category,
        "environment_name": ENVIRONMENT_NAME,
    }


def load_workbench(directory: str | Path = WORKBENCH_DIR) -> list[Row]:
    """All WorkBench rows as NeMo Gym rows.

    Files are read in name order and ids count up from 0 in that order, so an id
    names the same query in every split.
    """
    files = sorted(Path(directory).glob("*" + FILE_SUFFIX))
    if not files:
        raise ConversionError(f"no *{FILE_SUFFIX} files in {directory}")
    rows: list[Row] = []
    for path in files:
        category = category_for(path.name.removesuffix(FILE_SUFFIX))
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ConversionError(f"{path}: expected columns {COLUMNS}, got {reader.fieldnames}")
            for line_no, record in enumerate(reader, start=2):
                answer = record["answer"]
                if record["query"] in GYM_DATA_ANSWERS:
                    answer = repr(GYM_DATA_ANSWERS[record["query"]])
                try:
                    ground_truth = parse_answer(answer, record["base_template"])
                except ConversionError as exc:
                    raise ConversionError(f"{path}:{line_no}: {exc}") from None
                rows.append(gym_row(len(rows), record["query"], ground_truth, category))
    return rows


def query_of(row: Row) -> str:
    return row["responses_create_params"]["input"][-1]["content"]


def validation_count(n: int, val_fraction: float) -> int:
    # Round half up (not Python's half-to-even) and keep at least one row.
    return min(n, max(1, math.floor(n * val_fraction + 0.5)))


def _rank_key(row: Row, seed: str | int | None) -> str:
    salt = "" if seed is None else f"{seed}:"
    return hashlib.sha256((salt + query_of(row)).encode("utf-8")).hexdigest()


def split(
    rows: Sequence[Row], val_fraction: float = 0.2, seed: str | int | None = None
) -> tuple[list[Row], list[Row]]:
    """Stratified, order-independent split -> (train, validation), each sorted by id.

    Without a seed the rank is the plain SHA-256 of the query; a seed salts it
    to draw a different, equally deterministic split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    by_category: dict[str, list[Row]] = {}
    for row in rows:
        by_category.setdefault(row["category"], []).append(row)
    train: list[Row] = []
    validation: list[Row] = []
    for members in by_category.values():
        ranked = sorted(members, key=lambda r: _rank_key(r, seed))
        cut = validation_count(len(ranked), val_fraction)
        validation.extend(ranked[:cut])
        train.extend(ranked[cut:])
    return sorted(train, key=lambda r: r["id"]), sorted(validation, key=lambda r: r["id"])


def _write_jsonl(path: Path, rows: Sequence[Row]) -> str:
    # json.dumps defaults match the spacing of NeMo Gym's own JSONL files.
    data = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _counts(rows: Sequence[Row]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["category"]] = counts.get(row["category"], 0) + 1
    return dict(sorted(counts.items()))


def write_split(
    out_dir: str | Path,
    val_fraction: float = 0.2,
    *,
    seed: str | int | None = None,
    source_dir: str | Path = WORKBENCH_DIR,
) -> dict[str, Any]:
    """Write train.jsonl, validation.jsonl and split_manifest.json; return the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, validation = split(load_workbench(source_dir), val_fraction, seed)
    n_train, n_val = _counts(train), _counts(validation)
    manifest: dict[str, Any] = {
        "source": "WorkBench queries_and_answers (olly-styles/WorkBench@42f1b6dc)",
        "val_fraction": val_fraction,
        "seed": seed,
        "split_rule": (
            "per category: sort rows by sha256([seed + ':'] + query); "
            "the first round_half_up(n * val_fraction), at least 1, go to validation"
        ),
        "counts": {
            category: {"train": n_train.get(category, 0), "validation": n_val.get(category, 0)}
            for category in sorted(set(n_train) | set(n_val))
        },
        "totals": {"train": len(train), "validation": len(validation)},
        "sha256": {
            "train.jsonl": _write_jsonl(out / "train.jsonl", train),
            "validation.jsonl": _write_jsonl(out / "validation.jsonl", validation),
        },
    }
    (out / "split_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True, help="directory for train/validation JSONL and the manifest")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of each category held out")
    parser.add_argument("--seed", default=None, help="salt for the query hash (default: none)")
    parser.add_argument("--source-dir", default=str(WORKBENCH_DIR), help="WorkBench queries_and_answers directory")
    ns = parser.parse_args(argv)
    manifest = write_split(ns.out_dir, ns.val_fraction, seed=ns.seed, source_dir=ns.source_dir)
    print(json.dumps({"counts": manifest["counts"], "totals": manifest["totals"]}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
