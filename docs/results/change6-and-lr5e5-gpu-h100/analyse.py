"""The thirteenth session's GPU numbers from the raw files here (README.md): Change 6 in the step benchmark
(bench/), the headroom probe with the sampling fix, L-hr5's checkpoints against the warm start (paired by
task, on the 138 validation tasks and on the 16 pooled ones), and the pooled tasks' sampled success while
training against what the probe saw."""
import json
import math
import re
from collections import defaultdict


def solved_by_task(path: str) -> dict[str, bool]:
    return {str(r["task_id"]): r["reward"] >= 1.0 for r in json.load(open(path))["results"]}


def binom_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


bench = json.load(open("bench/bench-variants.json"))
summary = bench["summary"]["compiled"]
print(f"bench on {bench['gpu']}: copy {bench['ceilings']['copy_bandwidth_gb_s']:.0f} GB/s, "
      f"bf16 matmul {bench['ceilings']['matmul_tflops']:.0f} TFLOP/s; step {summary['step_s']:.2f} s (generation "
      f"{summary['generation_s']:.2f}, training {summary['training_s']:.2f}, other {summary['other_s']:.2f}), "
      f"{summary['generated_tokens_per_s']:.0f} generated tok/s = {summary['roofline_fraction']:.1%} of the decode "
      f"roofline, training MFU {summary['mfu_training']:.1%}, "
      f"peak {summary['peak_memory']['timed_steps_max_allocated_mb']:.0f} MiB")
for name, v in summary["training_variants"].items():
    print(f"  {name}: {v['seconds']:.2f} s/step, {v['forward_tokens']:.0f} forward tokens, "
          f"MFU {v['mfu_training']:.1%}, log-prob difference mean {v['logp_mean_abs_diff']:.4f} "
          f"max {v['logp_max_abs_diff']:.2f}")
for line in re.findall(r"\[bench\] (\{.*\})", open("bench/bench-child.log").read()):
    s = json.loads(line)
    print(f"  step {s['step']}: {s['step_s']:.1f} s; " + ", ".join(
        f"{k[len('variant_'):-2]} {v:.2f} s" for k, v in s.items() if k.startswith("variant_")))

log = open("train-L-hr5.log").read()
screened = [(t, s == "1") for line in re.findall(r"\[grpo\] greedy (.*)", log)
            for t, s in re.findall(r"(\d+):(\d)", line)]
sampled = [(t, int(s), int(n)) for line in re.findall(r"\[grpo\] probed (.*)", log)
           for t, s, n in re.findall(r"(\d+):(\d+)/(\d+)", line)]
choice = json.load(open("pool-L-hr5.json"))
print(f"probe: {choice['seconds']} s; greedy screened {len(screened)}, solves {sum(s for _, s in screened)}; "
      f"sampled {len(sampled)} greedy-failing tasks x 8: solve rate "
      f"{sum(s for _, s, _ in sampled) / (8 * len(sampled)):.3f}, "
      f"with a sampled success {sum(s > 0 for _, s, _ in sampled)}; pool {len(choice['task_ids'])} "
      f"({choice['qualified']} qualified)")

warm = solved_by_task("eval-warm-F.json")
print(f"warm-F {sum(warm.values()) / len(warm):.4f} on {len(warm)} validation tasks")
pool = choice["task_ids"]
for step in (10, 20, 30):
    after = solved_by_task(f"eval-L-hr5-step_{step}.json")
    d = [after[k] - warm[k] for k in warm]
    mean = sum(d) / len(d)
    half = 1.96 * math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
    on_pool = solved_by_task(f"eval-pool-L-hr5-step_{step}.json")
    print(f"L-hr5 step {step}: {sum(after.values()) / len(after):.4f}; gained {d.count(1)}, lost {d.count(-1)}; "
          f"paired change {mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]; greedy on the pool "
          f"{sum(on_pool.values())}/{len(on_pool)} {sorted(t for t, s in on_pool.items() if s)}")

steps = [r for r in map(json.loads, open("metrics-L-hr5.jsonl")) if r.get("kind") == "train"]
by_window: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
for r in steps:
    for task, reward in zip(r["train/task_ids"], r["train/rollout_rewards"], strict=True):
        by_window[task][(r["step"] - 1) // 10].append(reward >= 1.0)  # shaped reward: 1 or more only when solved
probe = {p["task_id"]: p for p in choice["probes"]}
print("pooled task: probe solved/8, training solved per rollout in steps 1-10, 11-20, 21-30, 31-40; "
      "P(probe >= its count | training's rate)")
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
for lo in range(0, len(steps), 10):
    chunk = steps[lo:lo + 10]
    solved, no_signal, secs = (sum(r[k] for r in chunk) / len(chunk) for k in (
        "train/rewards/task_solved/mean", "train/frac_reward_zero_std", "timing/train/total_step_time"))
    print(f"steps {chunk[0]['step']}-{chunk[-1]['step']}: solved per rollout {solved:.3f}, "
          f"groups without signal {no_signal:.2f}, step {secs:.1f} s")
