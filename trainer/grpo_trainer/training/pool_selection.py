"""Which training tasks GRPO draws from (`data.max_train_tasks`, `data.pool_selection`).

GRPO learns only from a group whose rewards differ: a task the starting policy always
solves, or never solves, gives every rollout the same reward, zero advantage and no
gradient. After a warm start most training tasks are one or the other (the run of
2026-12-03 spent 7 of its 12 steps on such groups). "pass_rate" therefore probes
candidates with the run's own sampled rollouts and keeps the tasks the starting policy
solves sometimes but not always: the difficulty filter of DAPO's dynamic sampling,
applied once before training rather than per step, so that each pooled task is
revisited and its reward can be compared with itself.

"headroom" keeps, of those, the tasks that greedy decoding (what evaluation runs) fails and a
sampled rollout still solves. A gradient from a task greedy already solves mostly makes sampling
more like greedy, which leaves greedy's answers, and so accuracy, where they were; only a task
whose successes are the sampled exceptions can move what greedy picks (docs/trainer.md, "Which
tasks can move greedy accuracy").

The chosen pool is written next to the checkpoints (`training_pool.json`) and read back
on resume: the probe samples from the starting model, which a resumed run no longer has.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InvalidDataError

POOL_FILE = "training_pool.json"
SELECTIONS = ("random", "pass_rate", "headroom")


@dataclass
class Probe:
    task_id: str
    solved: int
    rollouts: int
    greedy_solved: bool | None = None  # "headroom" only, which samples no rollouts where greedy solves

    @property
    def mixed(self) -> bool:
        return 0 < self.solved < self.rollouts

    def qualifies(self, selection: str) -> bool:
        if selection == "headroom":
            return self.greedy_solved is False and self.solved > 0
        return self.mixed


@dataclass
class PoolChoice:
    selection: str
    task_ids: list[str]
    probes: list[Probe] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mixed(self) -> int:
        return sum(1 for p in self.probes if p.mixed and p.task_id in self.task_ids)

    @property
    def qualified(self) -> int:
        """Pooled tasks that met the selection's test (for pass_rate, the mixed ones)."""
        return sum(1 for p in self.probes if p.qualifies(self.selection) and p.task_id in self.task_ids)


def seeded_sample(tasks: list[Any], size: int | None, seed: int) -> list[Any]:
    """All tasks, or a seeded sample of `size` kept in file order."""
    if size is None or size >= len(tasks):
        return tasks
    keep = set(random.Random(seed).sample(range(len(tasks)), size))
    return [t for i, t in enumerate(tasks) if i in keep]


def probe_order(tasks: list[Any], seed: int) -> list[Any]:
    order = list(range(len(tasks)))
    random.Random(seed).shuffle(order)
    return [tasks[i] for i in order]


def probe_until(candidates: Sequence[Any], size: int, probe: Callable[[list[Any]], list[Probe]], chunk: int,
                selection: str = "pass_rate", screen: Callable[[list[Any]], list[bool]] | None = None,
                screen_chunk: int = 1) -> list[Probe]:
    """Probe candidates `chunk` at a time, in order, until `size` of them qualify for `selection` (pass_rate:
    a mixed pass rate) or the candidates run out. Returns every probe made, in probe order.

    With a greedy `screen` (headroom), candidates are decoded greedily `screen_chunk` at a time first, and only
    those greedy fails are sampled: a task greedy solves cannot qualify, so its rollouts would be wasted. And a
    decoding loop costs about the same for 8 episodes as for 64, so greedy runs over many tasks at once (on an
    H200 the former probe, which sampled every candidate and then ran greedy on the same 8 tasks, covered 104
    candidates in 17 minutes). Tasks greedy solves are recorded with no rollouts."""
    probes: list[Probe] = []
    queue, failing = list(candidates), []
    while queue or failing:
        if screen is not None and len(failing) < chunk and queue:
            batch, queue = queue[:screen_chunk], queue[screen_chunk:]
            for task, greedy_solved in zip(batch, screen(batch), strict=True):
                if greedy_solved:
                    probes.append(Probe(str(task.id), 0, 0, True))
                else:
                    failing.append(task)
            continue
        source = failing if screen is not None else queue
        batch = source[:chunk]
        del source[:chunk]
        sampled = probe(batch)
        if screen is not None:
            sampled = [replace(p, greedy_solved=False) for p in sampled]
        probes.extend(sampled)
        if sum(p.qualifies(selection) for p in probes) >= size:
            break
    # screened but not sampled when enough qualified: recorded, so that the file names every task probed
    return probes + [Probe(str(t.id), 0, 0, False) for t in failing]


def pool_from_probes(probes: list[Probe], size: int, selection: str = "pass_rate") -> list[str]:
    """The qualifying tasks first; when too few were found, filled with the other probed tasks in probe order,
    for headroom those greedy fails before those it solves: greedy's answer on them is still open, and the
    shaped reward can still differ within their groups."""
    def rank(p: Probe) -> tuple[bool, bool]:
        return not p.qualifies(selection), selection == "headroom" and p.greedy_solved is not False

    return [p.task_id for p in sorted(probes, key=rank)][:size]  # sorted is stable: probe order within a rank


def read_choice(checkpoint_dir: str | Path) -> PoolChoice | None:
    path = Path(checkpoint_dir) / POOL_FILE
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return PoolChoice(raw["selection"], [str(t) for t in raw["task_ids"]],
                      [Probe(**p) for p in raw.get("probes", [])], float(raw.get("seconds", 0.0)))


def write_choice(checkpoint_dir: str | Path, choice: PoolChoice) -> Path:
    path = Path(checkpoint_dir) / POOL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    record = {**asdict(choice), "mixed": choice.mixed, "qualified": choice.qualified}
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)
    return path


def tasks_of(choice: PoolChoice, tasks: list[Any], source: str) -> list[Any]:
    """The chosen tasks in file order; a chosen id missing from the data is an error naming the file."""
    by_id = {str(t.id): t for t in tasks}
    missing = [t for t in choice.task_ids if t not in by_id]
    if missing:
        raise InvalidDataError(source, None,
                               f"{POOL_FILE} names training tasks not in this data set: {missing[:5]} "
                               "(point checkpointing.checkpoint_dir at an empty directory to choose anew)")
    chosen = set(choice.task_ids)
    return [t for t in tasks if str(t.id) in chosen]


def choose_pool(tasks: list[Any], *, size: int | None, selection: str, seed: int, probe_limit: int,
                chunk: int, probe: Callable[[list[Any]], list[Probe]],
                screen: Callable[[list[Any]], list[bool]] | None = None, screen_chunk: int = 1) -> PoolChoice:
    if selection == "random" or size is None or size >= len(tasks):
        return PoolChoice("random", [str(t.id) for t in seeded_sample(tasks, size, seed)])
    started = time.time()
    probes = probe_until(probe_order(tasks, seed)[:probe_limit], size, probe, chunk, selection,
                         screen if selection == "headroom" else None, screen_chunk)
    return PoolChoice(selection, pool_from_probes(probes, size, selection), probes, round(time.time() - started, 1))


def _solved(episode: Any) -> bool:
    """The task's final state matched the ground truth: reward 1, for sampled and greedy episodes alike."""
    return episode.reward >= 1.0


def episode_probe(run: Callable[[list[Any]], list[Any]], rollouts: int) -> Callable[[list[Any]], list[Probe]]:
    """Turns a batch episode runner into a probe: `rollouts` sampled episodes per task, solved = reward 1."""

    def probe(tasks: list[Any]) -> list[Probe]:
        episodes = run([t for t in tasks for _ in range(rollouts)])
        return [Probe(str(t.id), sum(map(_solved, episodes[i * rollouts:(i + 1) * rollouts])), rollouts)
                for i, t in enumerate(tasks)]

    return probe


def greedy_screen(run: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], list[bool]]:
    """Turns a greedy batch episode runner into headroom's screen: did greedy solve each task (reward 1)?"""

    def screen(tasks: list[Any]) -> list[bool]:
        return [_solved(ep) for ep in run(list(tasks))]

    return screen
