"""`python -m grpo_trainer report --data report-data.json --out-dir DIR`: the run report's plots.

Input (written by the pipeline's `writeReport` activity)::

    {"runId": str,
     "train": [{"step": int, "reward": float}, ...],          # train/reward per step
     "validation": [{"step": int, "accuracy": float}, ...],   # validation/accuracy per validation
     "baseline": {"accuracy": float} | null,                  # base model, offline evaluation
     "final": {"accuracy": float, "step": int} | null,        # best checkpoint, offline evaluation
     "checkpoints": {"saved": [int], "retained": [int], "best": int | null},
     "metricName": str,
     "points": [{"label": str, "accuracy": float, "interval": [lo, hi] | null,   # base, warm start, GRPO
                 "numTasks": int | null, "perCategory": {str: float}}]}

Output: `validation_accuracy.png`, `train_reward.png`, `evaluation_points.png`
and `plots.json` (id, file, title, caption of each). The intervals are the
pipeline's (src/report/stats.ts); this module only draws them. Every saved checkpoint is marked by a dotted
vertical line; retained ones by a solid green line, the best one labelled.
Each plot draws its data in its own colour (validation blue, reward orange),
which the report's browser test looks for.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

VALIDATION_COLOR = "#1f77b4"
REWARD_COLOR = "#ff7f0e"
RETAINED_COLOR = "#2ca02c"
REMOVED_COLOR = "#9a9a9a"
BASELINE_COLOR = "#d62728"


def _mark_checkpoints(ax: Any, checkpoints: dict[str, Any]) -> None:
    retained = set(checkpoints.get("retained") or [])
    best = checkpoints.get("best")
    labelled = set()
    for step in sorted(set(checkpoints.get("saved") or []) | retained):
        kept = step in retained
        label = "checkpoint (retained)" if kept else "checkpoint (removed by retention)"
        ax.axvline(step, color=RETAINED_COLOR if kept else REMOVED_COLOR, linestyle="-" if kept else ":",
                   linewidth=2.2 if kept else 1.2, alpha=0.8, zorder=1, label=None if label in labelled else label)
        labelled.add(label)
        if step == best:
            ax.annotate("best", xy=(step, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", color=RETAINED_COLOR, fontsize=9, fontweight="bold")


def _finish(ax: Any, fig: Any, path: Path, steps: list[int], empty_text: str | None) -> None:
    if empty_text:
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes, color="#555555")
    if steps:
        ax.set_xlim(min(0, min(steps)) - 0.5, max(steps) + 0.5)
    ax.set_xlabel("training step")
    ax.grid(True, alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="best", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    fig.savefig(path, dpi=100, facecolor="white")


def plot_validation(data: dict[str, Any], path: Path) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    points = sorted(data.get("validation") or [], key=lambda p: p["step"])
    steps = [p["step"] for p in points]
    ax.plot(steps, [p["accuracy"] for p in points], color=VALIDATION_COLOR, marker="o", linewidth=2.5,
            markersize=7, label="validation accuracy (in training)", zorder=3)
    baseline, final = data.get("baseline"), data.get("final")
    if baseline and baseline.get("accuracy") is not None:
        ax.axhline(baseline["accuracy"], color=BASELINE_COLOR, linestyle="--", linewidth=1.5,
                   label=f"baseline (base model) {baseline['accuracy']:.3f}", zorder=2)
    if final and final.get("accuracy") is not None and final.get("step") is not None:
        ax.scatter([final["step"]], [final["accuracy"]], marker="*", s=220, color=VALIDATION_COLOR,
                   edgecolors="black", zorder=4, label=f"final eval (best checkpoint) {final['accuracy']:.3f}")
        steps = steps + [final["step"]]
    _mark_checkpoints(ax, data.get("checkpoints") or {})
    steps = steps + list((data.get("checkpoints") or {}).get("saved") or [])
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("accuracy (binary reward)")
    ax.set_title("Workplace validation accuracy per step")
    _finish(ax, fig, path, steps, None if points else "no validation records")
    plt.close(fig)
    return {"id": "validation_accuracy", "file": path.name, "title": "Validation accuracy per step",
            "caption": "validation/accuracy logged by the trainer at each validation; dashed: the base model's "
                       "offline evaluation; star: the best checkpoint's offline evaluation; vertical lines: "
                       "checkpoints (solid green retained, dotted grey removed by retention)."}


def plot_reward(data: dict[str, Any], path: Path) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    points = sorted(data.get("train") or [], key=lambda p: p["step"])
    steps = [p["step"] for p in points]
    rewards = [p["reward"] for p in points]
    ax.plot(steps, rewards, color=REWARD_COLOR, marker="o", linewidth=2.5, markersize=6,
            label="train/reward (mean over the step's rollouts)", zorder=3)
    if len(points) >= 3:
        window = 3
        rolling = [sum(rewards[max(0, i - window + 1):i + 1]) / len(rewards[max(0, i - window + 1):i + 1])
                   for i in range(len(rewards))]
        ax.plot(steps, rolling, color=REWARD_COLOR, linestyle="--", linewidth=1.2, alpha=0.7,
                label=f"rolling mean ({window} steps)", zorder=2)
    _mark_checkpoints(ax, data.get("checkpoints") or {})
    steps = steps + list((data.get("checkpoints") or {}).get("saved") or [])
    ax.set_ylabel("reward")
    ax.set_title("Train reward per step")
    _finish(ax, fig, path, steps, None if points else "no training records")
    plt.close(fig)
    return {"id": "train_reward", "file": path.name, "title": "Train reward per step",
            "caption": "train/reward per step (with reward shaping if enabled) and its 3-step rolling mean; "
                       "vertical lines: checkpoints (solid green retained, dotted grey removed by retention)."}


POINT_COLORS = (BASELINE_COLOR, "#9467bd", VALIDATION_COLOR)


def plot_points(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Overall accuracy at each evaluation point with its 95% interval, and per category beside it."""
    import matplotlib.pyplot as plt

    points = data.get("points") or []
    categories = sorted({c for p in points for c in (p.get("perCategory") or {})})
    groups = ["overall", *[c.removeprefix("workplace_assistant_") for c in categories]]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / max(1, len(points))
    for i, point in enumerate(points):
        values = [point["accuracy"], *[(point.get("perCategory") or {}).get(c, 0.0) for c in categories]]
        xs = [g + (i - (len(points) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width=width * 0.95, color=POINT_COLORS[i % len(POINT_COLORS)],
               label=f"{point['label']} {point['accuracy']:.3f}", zorder=3)
        interval = point.get("interval")
        if interval:
            ax.errorbar([xs[0]], [point["accuracy"]], yerr=[[point["accuracy"] - interval[0]],
                        [interval[1] - point["accuracy"]]], fmt="none", ecolor="black", capsize=4, zorder=4)
    ax.set_xticks(range(len(groups)), groups, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.03)
    ax.set_ylabel("accuracy (binary reward)")
    ax.set_title("Workplace validation accuracy at each evaluation point")
    ax.grid(True, axis="y", alpha=0.25)
    if points:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    else:
        ax.text(0.5, 0.5, "no offline evaluations", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100, facecolor="white")
    plt.close(fig)
    tasks = ", ".join(f"{p['label']}: {p.get('numTasks') or '?'}" for p in points)
    return {"id": "evaluation_points", "file": path.name, "title": "Accuracy at each evaluation point",
            "caption": "Offline evaluations on the same validation tasks: the base model, after the warm start "
                       f"(when the run had one) and the best GRPO checkpoint; black bars: Wilson 95% interval of "
                       f"the overall accuracy. Tasks: {tasks or 'none'}."}


def write_plots(data: dict[str, Any], out_dir: Path) -> list[dict[str, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [plot_validation(data, out_dir / "validation_accuracy.png"),
             plot_reward(data, out_dir / "train_reward.png"),
             plot_points(data, out_dir / "evaluation_points.png")]
    (out_dir / "plots.json").write_text(json.dumps({"matplotlib": matplotlib.__version__, "plots": plots}, indent=2))
    return plots


def main(ns: argparse.Namespace) -> int:
    data = json.loads(Path(ns.data).read_text())
    plots = write_plots(data, Path(ns.out_dir))
    print(json.dumps({"plots": [str(Path(ns.out_dir) / p["file"]) for p in plots]}), flush=True)
    return 0
