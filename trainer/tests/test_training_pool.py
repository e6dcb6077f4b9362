"""data.max_train_tasks and data.pool_selection: which training tasks GRPO draws its steps from."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from grpo_trainer.errors import InvalidDataError
from grpo_trainer.training.pool_selection import (
    POOL_FILE,
    PoolChoice,
    Probe,
    choose_pool,
    episode_probe,
    greedy_screen,
    pool_from_probes,
    probe_until,
    read_choice,
    seeded_sample,
    tasks_of,
    write_choice,
)

from .conftest import CPU_CONFIG, metrics, run_trainer, tiny_overrides


def test_pool_is_a_seeded_sample_in_file_order():
    tasks = list(range(100))
    pool = seeded_sample(tasks, 4, seed=42)
    assert len(pool) == 4 and pool == sorted(pool) and set(pool) <= set(tasks)
    assert seeded_sample(tasks, 4, seed=42) == pool
    assert seeded_sample(tasks, 4, seed=7) != pool


def test_no_limit_or_a_large_one_keeps_every_task():
    tasks = list(range(10))
    assert seeded_sample(tasks, None, seed=1) == tasks
    assert seeded_sample(tasks, 50, seed=1) == tasks


def _task(i: int) -> SimpleNamespace:
    return SimpleNamespace(id=i)


def _probe_with(pass_counts: dict[int, int], calls: list[list[int]]):
    def probe(tasks):
        calls.append([t.id for t in tasks])
        return [Probe(str(t.id), pass_counts.get(t.id, 0), 4) for t in tasks]
    return probe


def test_probing_stops_once_enough_tasks_have_a_mixed_pass_rate():
    calls: list[list[int]] = []
    probes = probe_until([_task(i) for i in range(10)], 2, _probe_with({1: 2, 3: 4, 4: 1, 8: 3}, calls), 2)
    assert calls == [[0, 1], [2, 3], [4, 5]]
    assert [p.task_id for p in probes if p.mixed] == ["1", "4"]
    assert pool_from_probes(probes, 2) == ["1", "4"]


def test_too_few_mixed_tasks_are_filled_with_the_others_in_probe_order():
    probes = [Probe("a", 0, 4), Probe("b", 4, 4), Probe("c", 1, 4), Probe("d", 0, 4)]
    assert pool_from_probes(probes, 3) == ["c", "a", "b"]


def test_headroom_keeps_the_tasks_greedy_fails_and_a_sampled_rollout_solves():
    probes = [Probe("solved", 8, 8, True), Probe("lucky", 3, 8, False), Probe("flaky", 5, 8, True),
              Probe("never", 0, 8, False), Probe("sampled-always", 8, 8, False)]
    assert [p.task_id for p in probes if p.qualifies("headroom")] == ["lucky", "sampled-always"]
    assert [p.task_id for p in probes if p.qualifies("pass_rate")] == ["lucky", "flaky"]
    # filled with a task greedy fails ("never") before one it solves, although "solved" was probed first
    assert pool_from_probes(probes, 3, "headroom") == ["lucky", "sampled-always", "never"]
    assert pool_from_probes(probes, 5, "headroom")[3:] == ["solved", "flaky"]


def test_headroom_screens_greedily_first_and_samples_only_the_tasks_greedy_fails():
    screened: list[list[int]] = []
    sampled: list[list[int]] = []

    def screen(tasks):
        screened.append([t.id for t in tasks])
        return [t.id % 2 == 0 for t in tasks]  # odd ids: greedy fails

    def probe(tasks):
        sampled.append([t.id for t in tasks])
        return [Probe(str(t.id), 2 if t.id in (3, 7) else 0, 4) for t in tasks]

    probes = probe_until([_task(i) for i in range(12)], 2, probe, 2, "headroom", screen, screen_chunk=4)
    # a task greedy solves is never sampled; the screen runs ahead only while fewer than a chunk wait
    assert screened == [[0, 1, 2, 3], [4, 5, 6, 7]] and sampled == [[1, 3], [5, 7]]
    assert [p.task_id for p in probes if p.qualifies("headroom")] == ["3", "7"]
    assert {p.task_id: (p.rollouts, p.greedy_solved) for p in probes} == {
        "0": (0, True), "2": (0, True), "4": (0, True), "6": (0, True),
        "1": (4, False), "3": (4, False), "5": (4, False), "7": (4, False)}


def test_headroom_records_tasks_screened_but_not_yet_sampled_when_enough_qualify():
    probes = probe_until([_task(i) for i in range(6)], 1, lambda ts: [Probe(str(t.id), 1, 4) for t in ts], 1,
                         "headroom", lambda ts: [False] * len(ts), screen_chunk=6)
    assert [(p.task_id, p.rollouts, p.greedy_solved) for p in probes] == [
        ("0", 4, False), *[(str(i), 0, False) for i in range(1, 6)]]
    assert pool_from_probes(probes, 3, "headroom") == ["0", "1", "2"]


def test_headroom_probing_stops_once_enough_tasks_qualify():
    sampled: list[list[int]] = []

    def probe(tasks):
        sampled.append([t.id for t in tasks])
        return [Probe(str(t.id), 2, 4) for t in tasks]

    choice = choose_pool([_task(i) for i in range(10)], size=2, selection="headroom", seed=0, probe_limit=10,
                         chunk=1, probe=probe, screen=lambda ts: [t.id % 2 == 0 for t in ts], screen_chunk=2)
    assert len(sampled) == 2 and choice.selection == "headroom"
    assert all(int(t) % 2 == 1 for t in choice.task_ids) and choice.qualified == 2


def test_pass_rate_never_runs_the_greedy_screen():
    def screen(tasks):
        raise AssertionError("pass_rate screened greedily")

    choice = choose_pool([_task(i) for i in range(4)], size=1, selection="pass_rate", seed=0, probe_limit=4,
                         chunk=2, probe=_probe_with({0: 1, 1: 1, 2: 1, 3: 1}, []), screen=screen, screen_chunk=4)
    assert choice.mixed == 1 and all(p.greedy_solved is None for p in choice.probes)


def test_pass_rate_pool_is_kept_in_file_order_and_probes_at_most_the_limit():
    tasks = [_task(i) for i in range(20)]
    calls: list[list[int]] = []
    choice = choose_pool(tasks, size=3, selection="pass_rate", seed=5, probe_limit=6, chunk=4,
                         probe=_probe_with({}, calls))
    probed = [i for call in calls for i in call]
    assert len(probed) == 6 and len(set(probed)) == 6  # nobody mixed: stops at the limit, no task twice
    assert choice.selection == "pass_rate" and choice.mixed == 0
    assert choice.task_ids == [str(i) for i in probed[:3]]
    assert [t.id for t in tasks_of(choice, tasks, "train.jsonl")] == sorted(probed[:3])


def test_random_selection_never_probes():
    calls: list[list[int]] = []
    choice = choose_pool([_task(i) for i in range(9)], size=3, selection="random", seed=1, probe_limit=9, chunk=1,
                         probe=_probe_with({}, calls))
    assert calls == [] and choice.probes == [] and len(choice.task_ids) == 3


def test_episode_probe_counts_solved_rollouts_per_task():
    def run(batch):
        assert [t.id for t in batch] == [7, 7, 7, 8, 8, 8]
        return [SimpleNamespace(reward=r) for r in (1.0, 0.0, 1.0, 0.0, 0.0, 0.0)]
    assert episode_probe(run, 3)([_task(7), _task(8)]) == [Probe("7", 2, 3), Probe("8", 0, 3)]


def test_greedy_screen_runs_one_episode_per_task_and_reads_reward_one_as_solved():
    def greedy(batch):
        assert [t.id for t in batch] == [7, 8, 9]
        return [SimpleNamespace(reward=r) for r in (0.4, 1.0, 0.0)]

    assert greedy_screen(greedy)([_task(7), _task(8), _task(9)]) == [False, True, False]


def test_choice_round_trips_and_a_foreign_task_is_named(tmp_path):
    choice = PoolChoice("pass_rate", ["2", "5"], [Probe("5", 1, 4), Probe("2", 3, 4), Probe("9", 0, 4)], 1.5)
    path = write_choice(tmp_path, choice)
    assert json.loads(path.read_text())["mixed"] == 2
    assert read_choice(tmp_path) == choice
    headroom = PoolChoice("headroom", ["5"], [Probe("5", 1, 4, False), Probe("2", 3, 4, True)], 2.0)
    assert json.loads(write_choice(tmp_path, headroom).read_text())["qualified"] == 1
    assert read_choice(tmp_path) == headroom
    assert read_choice(tmp_path / "elsewhere") is None
    with pytest.raises(InvalidDataError, match=r"train\.jsonl: .*not in this data set: \['5'\]"):
        tasks_of(choice, [_task(2), _task(3)], "train.jsonl")


def test_training_draws_only_from_the_probed_pool_and_a_later_segment_does_not_probe_again(
        tiny_model, task_files, tmp_path):
    pool_args = ["data.max_train_tasks=2", "data.pool_selection=pass_rate", "data.pool_probe_tasks=3",
                 "grpo.max_num_epochs=2", "grpo.max_val_samples=1"]

    def train(*extra: str):
        result = run_trainer("train", "--config", str(CPU_CONFIG), *tiny_overrides(tiny_model, *task_files, tmp_path),
                             *pool_args, *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    first = train("grpo.stop_after_step=1")
    assert "choosing 2 training tasks by pass rate" in first.stdout
    record = json.loads((tmp_path / "checkpoints" / POOL_FILE).read_text())
    # The tiny random model solves nothing: three candidates probed (the limit), none mixed, the first two kept.
    assert [p["rollouts"] for p in record["probes"]] == [4, 4, 4] and record["mixed"] == 0
    assert record["task_ids"] == [p["task_id"] for p in record["probes"][:2]]
    second = train()
    assert "choosing" not in second.stdout
    drawn = {t for m in metrics(tmp_path).values() for t in m["train/task_ids"]}
    assert drawn == set(record["task_ids"])


def test_headroom_pool_screens_greedily_then_samples_and_training_draws_from_it(tiny_model, task_files, tmp_path):
    result = run_trainer("train", "--config", str(CPU_CONFIG), *tiny_overrides(tiny_model, *task_files, tmp_path),
                         "data.max_train_tasks=2", "data.pool_selection=headroom", "data.pool_probe_tasks=3",
                         "grpo.max_num_epochs=2", "grpo.stop_after_step=1", "checkpointing.save_period=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "choosing 2 training tasks by headroom" in result.stdout
    record = json.loads((tmp_path / "checkpoints" / POOL_FILE).read_text())
    # The tiny random model solves nothing, greedy or sampled: no task qualifies, the first two probed are kept.
    assert record["selection"] == "headroom" and record["qualified"] == 0
    assert [(p["rollouts"], p["greedy_solved"]) for p in record["probes"]] == [(4, False)] * 3
    # screened greedily first, one "[grpo] greedy" line a batch, then sampled
    greedy_lines = [line for line in result.stdout.splitlines() if line.startswith("[grpo] greedy ")]
    assert greedy_lines and all(s.endswith(":0") for line in greedy_lines for s in line.split()[2:])
    assert {t for m in metrics(tmp_path).values() for t in m["train/task_ids"]} == set(record["task_ids"])
