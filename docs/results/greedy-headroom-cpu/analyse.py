"""Per task: sampled successes out of 8 at each temperature, against greedy's outcome (README.md)."""
import collections
import json


def solved_per_task(path: str) -> tuple[dict, dict[int, int]]:
    d = json.load(open(path))
    c: dict[int, list[bool]] = collections.defaultdict(list)
    for r in d["results"]:
        c[int(r["task_id"]) // 100].append(r["reward"] >= 1.0)  # ids were task id x 100 + copy
    return d, {k: sum(v) for k, v in c.items()}


greedy = {int(r["task_id"]): r["reward"] >= 1.0 for r in json.load(open("greedy.json"))["results"]}
print("greedy solved", sum(greedy.values()), "/", len(greedy))
for t in ("0.7", "1.0"):
    d, n = solved_per_task(f"sampled-t{t}.json")
    signal = {k: (v / 8) * (1 - v / 8) for k, v in n.items()}  # p(1-p): a group's reward variance
    on_solved = sum(s for k, s in signal.items() if greedy[k]) / sum(signal.values())
    failing = [k for k in n if not greedy[k]]
    print(f"T={t}: solved per rollout {sum(n.values()) / (8 * len(n)):.3f}; mixed groups {sum(0 < v < 8 for v in n.values())}"
          f" (on greedy-solved tasks {sum(0 < n[k] < 8 for k in n if greedy[k])}); solve rate where greedy solves "
          f"{sum(n[k] for k in n if greedy[k]) / (8 * sum(greedy.values())):.3f}, where it fails "
          f"{sum(n[k] for k in failing) / (8 * len(failing)):.3f}; greedy-failing tasks with a sampled success "
          f"{sum(n[k] > 0 for k in failing)} of {len(failing)}; share of p(1-p) on greedy-solved tasks {on_solved:.2f}")
