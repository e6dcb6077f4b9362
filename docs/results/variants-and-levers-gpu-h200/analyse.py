"""The ninth session's GPU numbers from the raw files here (README.md): L-hr's headroom probe and L-kl's
checkpoints against the warm start, paired by task."""
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from headroom_runs import paired_change, solved_by_task  # noqa: E402

probes = [(t, int(s), g == "1") for t, s, g in re.findall(r"(\d+):(\d+)/8,greedy:(\d)", open("train-L-hr.log").read())]
solved = [p for p in probes if p[2]]
failed = [p for p in probes if not p[2]]
variance = {t: (s / 8) * (1 - s / 8) for t, s, _ in probes}  # p(1-p): a group's reward variance
print(f"probed {len(probes)}: greedy solves {len(solved)}; sampled solve rate {sum(s for _, s, _ in probes) / 8 / len(probes):.3f} "
      f"(where greedy solves {sum(s for _, s, _ in solved) / 8 / len(solved):.3f}, where it fails "
      f"{sum(s for _, s, _ in failed) / 8 / len(failed):.3f}); groups with rewards that differ "
      f"{sum(0 < s < 8 for _, s, _ in probes)}; greedy-failing with a sampled success "
      f"{sum(s > 0 for _, s, _ in failed)} of {len(failed)}; share of p(1-p) on greedy-solved tasks "
      f"{sum(variance[t] for t, _, _ in solved) / sum(variance.values()):.2f}")


warm = solved_by_task("eval-warm-F.json")
print(f"warm-F {sum(warm.values()) / len(warm):.4f} on {len(warm)} validation tasks")
for step in (15, 30, 45):
    after = solved_by_task(f"eval-L-kl-step_{step}.json")
    mean, lo, hi, gained, lost = paired_change(warm, after)
    print(f"L-kl step {step}: {sum(after.values()) / len(after):.4f}; gained {gained}, lost {lost}; "
          f"paired change {mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")

steps = [r for r in map(json.loads, open("metrics-L-kl.jsonl")) if r.get("kind") == "train"]
for i in range(0, len(steps), 9):
    chunk = steps[i:i + 9]
    mean = lambda key: sum(r[key] for r in chunk) / len(chunk)  # noqa: E731
    print(f"L-kl steps {chunk[0]['step']}-{chunk[-1]['step']}: solved per rollout {mean('train/rewards/task_solved/mean'):.3f}, "
          f"KL {mean('train/kl'):.4f}, groups without signal {mean('train/frac_reward_zero_std'):.2f}, "
          f"step {mean('timing/train/total_step_time'):.1f} s")
