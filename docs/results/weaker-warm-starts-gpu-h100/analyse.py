"""#12, "GRPO adds at least 0.05 over the warm start": GRPO as shipped from two weaker warm starts, 2 epochs (W2) and
1.5 epochs (W15), from the raw files here. Run it in this directory. For the curve of warm starts it reads the
nineteenth session's 3-epoch (F) and 1-epoch (E1) warm starts (../temperature-and-one-epoch-gpu-h100/), and for
training it compares with the seventh session's shipped run from F (../grpo-shipped-alone-gpu-h200/).
"""
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from headroom_runs import paired_change, solved_by_task  # noqa: E402

EARLIER = Path("../temperature-and-one-epoch-gpu-h100")
SHIPPED = Path("../grpo-shipped-alone-gpu-h200/metrics-S-ship.jsonl")
WINDOW = 20


def accuracy(path: Path) -> str:
    e = json.loads(path.read_text())
    return f"{e['accuracy']:.3f} ({round(e['accuracy'] * e['num_tasks'])}/{e['num_tasks']})"


def paired(before: Path, after: Path) -> str:
    mean, lo, hi, gained, lost = paired_change(solved_by_task(str(before)), solved_by_task(str(after)))
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}] (+{gained}/-{lost})"


def train_steps(path: Path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("kind") == "train"]


def mean_of(steps: list[dict], key: str) -> float:
    return sum(r[key] for r in steps) / len(steps)


def windows(name: str, steps: list[dict]) -> None:
    print(f"{name}: {len(steps)} steps, skipped updates {sum(r.get('train/skipped_updates') or 0 for r in steps)}, "
          f"median step {statistics.median(r['timing/train/total_step_time'] for r in steps[1:]):.1f} s")
    for lo in range(0, len(steps), WINDOW):
        chunk = steps[lo:lo + WINDOW]
        print(f"  steps {chunk[0]['step']:>2}-{chunk[-1]['step']:<2}: solved per rollout "
              f"{mean_of(chunk, 'train/rewards/task_solved/mean'):.3f}, groups without signal "
              f"{mean_of(chunk, 'train/frac_reward_zero_std'):.2f}")


print("warm starts, accuracy on the 138 validation tasks (greedy), and paired 95 % change against the 3-epoch F")
warm_f = EARLIER / "eval-warm-F.json"
for name, path in (("E1", EARLIER / "eval-warm-E1.json"), ("W15", Path("eval-warm-W15.json")),
                   ("W2", Path("eval-warm-W2.json")), ("F", warm_f)):
    record = json.loads((path.parent / path.name.replace("eval-", "")).read_text())
    vs_f = "" if path == warm_f else f"  vs F {paired(warm_f, path)}"
    print(f"  {name:4} {record['settings']['epochs']:g} epochs, loss {record['final_loss']:.3f}: {accuracy(path)}{vs_f}")

for run in ("W2", "W15"):
    warm = Path(f"eval-warm-{run}.json")
    print(f"\nGRPO from {run} ({accuracy(warm)}), each checkpoint against its own warm start, paired 95 %:")
    steps = sorted(int(p.stem.rsplit("_", 1)[1]) for p in Path(".").glob(f"eval-{run}-step_*.json"))
    for step in steps:
        path = Path(f"eval-{run}-step_{step}.json")
        print(f"  step {step:>2}: {accuracy(path)}  {paired(warm, path)}")

print()
w2, w15, ship = (train_steps(p) for p in (Path("metrics-W2.jsonl"), Path("metrics-W15.jsonl"), SHIPPED))
for name, steps in (("W2", w2), ("W15", w15), ("from F (seventh session, H200)", ship)):
    windows(name, steps)
upto = min(len(w2), len(w15), len(ship))
same = sum(a["train/task_ids"] == b["train/task_ids"] == c["train/task_ids"] for a, b, c in zip(w2, w15, ship))
print(f"the three runs drew the same tasks at {same} of their first {upto} steps; over those steps solved per rollout "
      + ", ".join(f"{n} {mean_of(s[:upto], 'train/rewards/task_solved/mean'):.3f}"
                  for n, s in (("W2", w2), ("W15", w15), ("F", ship))))
