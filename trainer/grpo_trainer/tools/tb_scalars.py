"""TensorBoard scalars of a run as the pipeline's metrics.jsonl (needs the `tensorboard` package).

NeMo RL logs `train/*` and `validation/*` scalars to TensorBoard under `<log_dir>/exp_NNN/tensorboard/`
(a new exp_NNN on every restart; step numbers continue). This reads every event file below the log
dir with TensorBoard's own reader and writes one record per (kind, step) in the built-in trainer's
metrics format ({"kind": "train"|"validation", "step": N, "<tag>": value, ...}), sorted by step, so the
run report and `grpo status` read NeMo RL runs like built-in ones. A later restart's value wins.

    python tb_scalars.py --log-dir DIR --out metrics.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KINDS = {"train": "train", "validation": "validation"}


def scalars(log_dir: Path) -> dict[tuple[str, int], dict[str, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    records: dict[tuple[str, int], dict[str, float]] = {}
    runs = sorted({p.parent for p in log_dir.rglob("events.out.tfevents.*")})
    for run in runs:  # exp_000 first: a restart's values overwrite the old ones for the same step
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            kind = KINDS.get(tag.split("/", 1)[0])
            if not kind:
                continue
            for event in acc.Scalars(tag):
                records.setdefault((kind, int(event.step)), {})[tag] = float(event.value)
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    records = scalars(a.log_dir)
    lines = [json.dumps({"kind": kind, "step": step, **values})
             for (kind, step), values in sorted(records.items(), key=lambda kv: (kv[0][1], kv[0][0] != "validation"))]
    tmp = a.out.with_suffix(".tmp")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
