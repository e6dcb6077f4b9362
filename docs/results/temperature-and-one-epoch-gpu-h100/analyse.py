"""#12's two untried levers for "GRPO adds at least 0.05 over the warm start" (README.md): the one-epoch warm start
(E1) and GRPO from the shipped warm start with rollouts at temperature 0.7 (T07), from the raw files here. Run it in
this directory. For comparison it reads the seventh session's shipped run at temperature 1.0
(../grpo-shipped-alone-gpu-h200/metrics-S-ship.jsonl), the same recipe and warm start settings alone on an H200.
"""
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from headroom_runs import paired_change, solved_by_task  # noqa: E402

WINDOW = 10
CATEGORIES = ("analytics", "calendar", "customer_relationship_manager", "email", "multi_domain", "project_management")


def evaluation(name: str) -> dict:
    return json.loads(Path(f"eval-{name}.json").read_text())


def paired(before: dict[str, bool], after: dict[str, bool]) -> str:
    mean, lo, hi, gained, lost = paired_change(before, after)
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}] (+{gained}/-{lost})"


def row(name: str) -> str:
    e = evaluation(name)
    cats = " ".join(f"{e['per_category'][f'workplace_assistant_{c}']:.3f}" for c in CATEGORIES)
    return f"{e['accuracy']:.3f} ({round(e['accuracy'] * e['num_tasks'])}/{e['num_tasks']})  {cats}"


def train_steps(path: str) -> list[dict]:
    return [r for r in map(json.loads, Path(path).read_text().splitlines()) if r.get("kind") == "train"]


def windows(steps: list[dict]) -> None:
    for lo in range(0, len(steps), WINDOW):
        chunk = steps[lo:lo + WINDOW]
        mean = {k: sum(r[k] for r in chunk) / len(chunk) for k in (
            "train/reward", "train/rewards/task_solved/mean", "train/frac_reward_zero_std",
            "train/mean_gen_tokens_per_sample", "timing/train/total_step_time")}
        print(f"  steps {chunk[0]['step']:>2}-{chunk[-1]['step']:<2}: shaped reward {mean['train/reward']:.3f}, solved "
              f"per rollout {mean['train/rewards/task_solved/mean']:.3f}, groups without signal "
              f"{mean['train/frac_reward_zero_std']:.2f}, generated tokens a rollout "
              f"{mean['train/mean_gen_tokens_per_sample']:.0f}, {mean['timing/train/total_step_time']:.1f} s a step")


def overall(steps: list[dict], upto: int) -> str:
    chunk = [r for r in steps if r["step"] <= upto]
    solved = sum(r["train/rewards/task_solved/mean"] for r in chunk) / len(chunk)
    flat = sum(r["train/frac_reward_zero_std"] for r in chunk) / len(chunk)
    return f"steps 1-{upto}: solved per rollout {solved:.3f}, groups without signal {flat:.2f}"


print("accuracy on the 138 validation tasks, greedy (solved)  per category: " + " ".join(CATEGORIES))
for name in ("warm-F", "warm-E1"):
    print(f"  {name:13} {row(name)}")
warm = solved_by_task("eval-warm-F.json")
checkpoints = sorted(int(p.stem.rsplit("_", 1)[1]) for p in Path(".").glob("eval-T07-step_*.json"))
for step in checkpoints:
    name = f"T07-step_{step}"
    print(f"  {name:13} {row(name)}  vs warm-F, paired 95 %: {paired(warm, solved_by_task(f'eval-{name}.json'))}")
print(f"  warm-E1 vs warm-F, paired 95 %: {paired(warm, solved_by_task('eval-warm-E1.json'))}")

for name in ("F", "E1"):
    w = json.loads(Path(f"warm-{name}.json").read_text())
    print(f"warm start {name}: {w['settings']['epochs']:g} epoch(s), {w['examples']} examples, {w['steps']} steps, "
          f"{w['seconds']} s, final loss {w['final_loss']:.3f}")

t07 = train_steps("metrics-T07.jsonl")
later_steps = [r["timing/train/total_step_time"] for r in t07[1:]]
print(f"\nT07: GRPO from warm-F at temperature 0.7, {len(t07)} steps; skipped updates "
      f"{sum(r.get('train/skipped_updates') or 0 for r in t07)}, largest grad norm "
      f"{max(r['train/grad_norm'] for r in t07):.3f}; median step {statistics.median(later_steps):.1f} s "
      f"(first {t07[0]['timing/train/total_step_time']:.0f} s, compiling the decoding step)")
windows(t07)
ship = train_steps("../grpo-shipped-alone-gpu-h200/metrics-S-ship.jsonl")
print(f"S-ship (seventh session): GRPO from its warm-F at temperature 1.0, {len(ship)} steps")
windows(ship)
upto = min(len(t07), len(ship))
print(f"same span, {overall(t07, upto)} at 0.7; {overall(ship, upto)} at 1.0")
same = [(a, b) for a, b in zip(t07, ship, strict=False) if a["train/task_ids"] == b["train/task_ids"]]
d = [a["train/rewards/task_solved/mean"] - b["train/rewards/task_solved/mean"] for a, b in same]
mean = sum(d) / len(d)
se = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))
print(f"the two runs drew the same tasks at {len(same)} of {upto} steps; solved per rollout at 0.7 minus at 1.0, "
      f"paired by step: {mean:+.3f}, standard error {se:.3f}")
e1 = train_steps("metrics-E1.jsonl")
print(f"\nE1: GRPO from warm-E1 logged {len(e1)} step(s), then ran out of GPU memory (train-E1.log)")
