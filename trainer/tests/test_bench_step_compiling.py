"""The GPU step benchmark names the timed steps whose times include compiling (bench_grpo_step_gpu.py).

At 64 rows a micro batch the first timed step once trained 3.3x slower than the second, most likely because it still
compiled; the benchmark's means hid it. These run on the CPU: the counter is torch.compile's own, and the
summary is the benchmark's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_grpo_step_gpu import dynamo_graphs, step_line, steps_from_progress, summarise, training_seconds  # noqa: E402

SHAPE = {"params": 1000, "weight_bytes": 2000, "layers": 2, "hidden": 8, "kv_bytes_per_token": 64}


def test_a_new_shape_under_static_compilation_counts_as_a_graph() -> None:
    double = torch.compile(lambda x: x * 2, backend="eager", dynamic=False)
    start = dynamo_graphs()
    double(torch.ones(3))
    first = dynamo_graphs()
    double(torch.ones(3))
    again = dynamo_graphs()
    double(torch.ones(5))  # a shape the graph was not built for: a recompile
    assert first > start
    assert again == first
    assert dynamo_graphs() > again


def _step(n: int, graphs: int) -> dict:
    return {"step": n, "step_s": 2.0, "generation_s": 1.0, "training_step_s": 1.8, "scoring_s": 1.2,
            "graphs_compiled": graphs, "micro_batches": [{"rows": 2, "padded_len": 8, "real_tokens": 12}]}


def test_summary_lists_the_timed_steps_that_compiled_and_only_those() -> None:
    run = {"model": SHAPE, "steps": [_step(1, 5), _step(2, 2), _step(3, 0)]}
    summary = summarise(run, warmup=1, ceil={"matmul_tflops": 1.0, "copy_bandwidth_gb_s": 1.0})
    assert summary["timed_steps"] == [2, 3]
    assert summary["timed_steps_that_compiled"] == [2]  # step 1 is warm-up: compiling there is expected
    assert [r["graphs_compiled"] for r in summary["per_step"]] == [2, 0]
    assert step_line(_step(2, 2))["graphs_compiled"] == 2


def test_no_step_compiled_gives_an_empty_list() -> None:
    run = {"model": SHAPE, "steps": [_step(1, 3), _step(2, 0), _step(3, 0)]}
    summary = summarise(run, warmup=1, ceil={"matmul_tflops": 1.0, "copy_bandwidth_gb_s": 1.0})
    assert summary["timed_steps_that_compiled"] == []


def test_progress_lines_give_back_each_steps_training_seconds_and_tokens() -> None:
    # A run that left no result file is read from these lines; a step without its metrics record is left out.
    steps = [_step(1, 4), _step(2, 0), _step(3, 0)]
    log = "noise\n" + "".join(f"[bench] {json.dumps(step_line(s))}\n" for s in steps)
    metrics = "".join(json.dumps({"kind": "train", "step": n, "train/packed_tokens": 100 * n}) + "\n" for n in (1, 2))
    read = steps_from_progress(log, metrics + json.dumps({"kind": "val", "step": 3}) + "\n")
    assert [(r["step"], r["real_tokens"], r["graphs_compiled"]) for r in read] == [(1, 100, 4), (2, 200, 0)]
    assert read[1]["training_s"] == training_seconds(step_line(steps[1])) == 1.8 - 1.2
