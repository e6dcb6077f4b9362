"""What the headroom-pool runs' analyse.py scripts share (headroom-pool-gpu-h200, change6-and-lr5e5-gpu-h100):
the probe's summary from the trainer's log, each checkpoint's greedy accuracy against the warm start (paired by
task), each pooled task's sampled success while training against what the probe saw, and the step benchmark's
training variants."""
import json
import math
import re
from collections import defaultdict


def solved_by_task(path: str) -> dict[str, bool]:
    return {str(r["task_id"]): r["reward"] >= 1.0 for r in json.load(open(path))["results"]}


def paired_change(before: dict[str, bool], after: dict[str, bool]) -> tuple[float, float, float, int, int]:
    """Mean per-task change in solved, its 95 % interval (normal approximation), tasks gained, tasks lost."""
    d = [after[k] - before[k] for k in before]
    mean = sum(d) / len(d)
    half = 1.96 * math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
    return mean, mean - half, mean + half, d.count(1), d.count(-1)


def binom_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def print_probe(train_log: str, pool_record: str) -> dict:
    """The probe's `[grpo] greedy` / `[grpo] probed` lines and its record; returns the record."""
    log = open(train_log).read()
    screened = [(t, s == "1") for line in re.findall(r"\[grpo\] greedy (.*)", log)
                for t, s in re.findall(r"(\d+):(\d)", line)]
    sampled = [(t, int(s), int(n)) for line in re.findall(r"\[grpo\] probed (.*)", log)
               for t, s, n in re.findall(r"(\d+):(\d+)/(\d+)", line)]
    choice = json.load(open(pool_record))
    print(f"probe: {choice['seconds']} s; greedy screened {len(screened)}, solves {sum(s for _, s in screened)}; "
          f"sampled {len(sampled)} greedy-failing tasks x 8: solve rate "
          f"{sum(s for _, s, _ in sampled) / (8 * len(sampled)):.3f}, "
          f"with a sampled success {sum(s > 0 for _, s, _ in sampled)}; pool {len(choice['task_ids'])} "
          f"({choice['qualified']} qualified)")
    return choice


def print_checkpoints(run: str, steps: tuple[int, ...]) -> None:
    """eval-warm-F.json against eval-RUN-step_N.json (138 validation tasks) and eval-pool-RUN-step_N.json."""
    warm = solved_by_task("eval-warm-F.json")
    print(f"warm-F {sum(warm.values()) / len(warm):.4f} on {len(warm)} validation tasks")
    for step in steps:
        after = solved_by_task(f"eval-{run}-step_{step}.json")
        mean, lo, hi, gained, lost = paired_change(warm, after)
        on_pool = solved_by_task(f"eval-pool-{run}-step_{step}.json")
        print(f"{run} step {step}: {sum(after.values()) / len(after):.4f}; gained {gained}, lost {lost}; "
              f"paired change {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]; greedy on the pool "
              f"{sum(on_pool.values())}/{len(on_pool)} {sorted(t for t, s in on_pool.items() if s)}")


def print_pool_training(metrics: str, choice: dict, window: int) -> None:
    """Each pooled task's solved share per `window` steps of training, and the chance of its probe count."""
    steps = [r for r in map(json.loads, open(metrics)) if r.get("kind") == "train"]
    by_window: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in steps:
        for task, reward in zip(r["train/task_ids"], r["train/rollout_rewards"], strict=True):
            by_window[task][(r["step"] - 1) // window].append(reward >= 1.0)  # shaped: 1 or more only when solved
    probe = {p["task_id"]: p for p in choice["probes"]}
    spans = ", ".join(f"{lo + 1}-{lo + window}" for lo in range(0, len(steps), window))
    print(f"pooled task: probe solved/8, training solved per rollout in steps {spans}; "
          "P(probe >= its count | training's rate)")
    pool = choice["task_ids"]
    improbable = 0
    for task in pool:
        rates = [sum(v) / len(v) for _, v in sorted(by_window[task].items())]
        overall = sum(sum(v) for v in by_window[task].values()) / sum(len(v) for v in by_window[task].values())
        tail = binom_tail(probe[task]["solved"], probe[task]["rollouts"], overall)
        improbable += tail < 0.01
        print(f"  {task:>4}: {probe[task]['solved']}/8  " + "  ".join(f"{x:.2f}" for x in rates) + f"  {tail:.2g}")
    all_rollouts = [x for w in by_window.values() for v in w.values() for x in v]
    print(f"pool: probe {sum(probe[t]['solved'] for t in pool) / (8 * len(pool)):.3f}, training "
          f"{sum(all_rollouts) / len(all_rollouts):.3f} per rollout; {improbable} of {len(pool)} tasks' probe counts "
          f"have P < 0.01 under their training rate")
    for lo in range(0, len(steps), window):
        chunk = steps[lo:lo + window]
        solved, no_signal, secs = (sum(r[k] for r in chunk) / len(chunk) for k in (
            "train/rewards/task_solved/mean", "train/frac_reward_zero_std", "timing/train/total_step_time"))
        print(f"steps {chunk[0]['step']}-{chunk[-1]['step']}: solved per rollout {solved:.3f}, "
              f"groups without signal {no_signal:.2f}, step {secs:.1f} s")


def print_training_variants(summary: dict, child_log: str) -> None:
    """The step benchmark's training variants (--training-variants) and each step's seconds per variant."""
    for name, v in summary["training_variants"].items():
        print(f"  {name}: {v['seconds']:.2f} s/step, {v['forward_tokens']:.0f} forward tokens, "
              f"MFU {v['mfu_training']:.1%}, "
              f"log-prob difference mean {v['logp_mean_abs_diff']:.3f} max {v['logp_max_abs_diff']:.2f}")
    for line in re.findall(r"\[bench\] (\{.*\})", open(child_log).read()):
        s = json.loads(line)
        print(f"  step {s['step']}: {s['step_s']:.1f} s; " + ", ".join(
            f"{k[len('variant_'):-2]} {v:.2f} s" for k, v in s.items() if k.startswith("variant_")))
