"""A real CUDA out-of-memory and the pipeline's OOM ladder, end to end on one GPU (issue #15).

Runs `python -m grpo_trainer train` (configs/builtin-gpu.yaml, in-process, no Ray) with
the given overrides, e.g. a micro batch that does not fit. When an attempt fails, its
failure.json goes to scripts/oom-decision.ts (bundled as `--decision`, run with node):
the pipeline's own classifier, `oomKnobs` and `decide`, with the overrides of the
earlier attempts and the retries already spent. A `retry` decision's configChanges are
added to the overrides of the next attempt, as the workflow does; a `fail` decision, an
attempt that succeeds or `--max-attempts` ends the ladder. Each attempt runs
`--steps` GRPO steps from scratch (no checkpoints), in its own log dir.

Writes `--out` (JSON): per attempt the overrides, exit code, wall time, failure.json, the
trainer's lines about the failure and the decision; for the attempt that trained, its
step records from metrics.jsonl. `--log` collects every attempt's trainer output.

    python trainer/bench/oom_ladder_gpu.py --model DIR --data-dir DIR --decision oom-decision.mjs \\
        --out ladder.json --log ladder.log [--node node] [--steps 1] [--max-attempts 4] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_subprocess import run_captured

TRAINER_ROOT = Path(__file__).resolve().parents[1]
REPO = TRAINER_ROOT.parent
CONFIG = REPO / "configs" / "builtin-gpu.yaml"
EVIDENCE = re.compile(r"OutOfMemory|out of memory|FAILED|Tried to allocate|world size|per-device batch|^step \d")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--decision", required=True, help="scripts/oom-decision.ts, bundled (or run through tsx)")
    parser.add_argument("--node", default="node")
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", default=None)
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--max-attempts", type=int, default=4)
    parser.add_argument("--attempt-timeout", type=float, default=300)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ns = parser.parse_args()

    work = Path(ns.work_dir or tempfile.mkdtemp(prefix="oom-ladder-")).resolve()
    data = Path(ns.data_dir).resolve()
    base = [
        f"policy.model_name={Path(ns.model).resolve()}", f"data.train.data_path={data / 'train.jsonl'}",
        f"data.validation.data_path={data / 'validation.jsonl'}", f"grpo.max_num_steps={ns.steps}",
        "grpo.max_num_epochs=1000", "grpo.stop_after_step=null", "grpo.val_at_start=false", "grpo.val_at_end=false",
        "grpo.val_period=0", "checkpointing.enabled=false", "logger.tensorboard_enabled=false",
    ]
    changes: list[str] = []  # what the recovery policy added, in order
    used = 0
    result: dict[str, Any] = {"benchmark": "oom-ladder", "config": ns.config, "user_overrides": ns.overrides,
                              "attempts": []}
    log = open(ns.log, "w") if ns.log else None  # noqa: SIM115 - closed at the end
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(TRAINER_ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("RAY_ADDRESS", None)
    for n in range(1, ns.max_attempts + 1):
        run_dir = work / f"attempt-{n}"
        trainer_overrides = [*ns.overrides, *changes]
        args = [sys.executable, "-m", "grpo_trainer", "train", "--config", ns.config, *base,
                f"checkpointing.checkpoint_dir={run_dir / 'checkpoints'}", f"logger.log_dir={run_dir / 'logs'}",
                *trainer_overrides]
        print(f"--- attempt {n}: {' '.join(trainer_overrides)}", flush=True)
        t = time.time()
        output, code = run_captured(args, env, TRAINER_ROOT, ns.attempt_timeout)
        wall = round(time.time() - t, 1)
        if log:
            log.write(f"===== attempt {n} (exit {code}, {wall}s): {' '.join(trainer_overrides)}\n{output}\n")
            log.flush()
        (run_dir / "trainer.log").parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "trainer.log").write_text(output)
        attempt: dict[str, Any] = {"attempt": n, "trainer_overrides": trainer_overrides, "exit_code": code,
                                   "wall_s": wall,
                                   "evidence_lines": [ln for ln in output.splitlines() if EVIDENCE.search(ln)][-12:]}
        result["attempts"].append(attempt)
        metrics = run_dir / "logs" / "metrics.jsonl"
        if code == 0:
            attempt["train_records"] = [json.loads(x) for x in metrics.read_text().splitlines()
                                        if '"train"' in x] if metrics.is_file() else []
            print(f"attempt {n} trained ({wall}s)", flush=True)
            break
        failure = run_dir / "logs" / "failure.json"
        if not failure.is_file():
            attempt["note"] = "no failure.json"
            break
        report = json.loads(failure.read_text())
        attempt["failure_json"] = {k: v for k, v in report.items() if k != "traceback"}
        attempt["failure_traceback_tail"] = report.get("traceback", "")[-1500:]
        cmd = [ns.node, ns.decision, "--config", ns.config, "--failure", str(failure), "--log",
               str(run_dir / "trainer.log"), "--exit-code", str(code if code is not None else 124), "--used", str(used)]
        for o in trainer_overrides:
            cmd += ["--override", o]
        dec = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
        if dec.returncode != 0:
            attempt["decision_error"] = dec.stderr[-2000:]
            break
        decision = json.loads(dec.stdout)
        attempt["decision"] = decision
        action = decision["action"]
        print(f"attempt {n}: {report['type']} -> {action['kind']}: {action['reason']} {action['configChanges']}",
              flush=True)
        if action["kind"] != "retry":
            break
        if decision["classification"]["type"] == "OutOfMemory":
            used += 1
        changes += action["configChanges"]
    result["final_overrides"] = [*ns.overrides, *changes]
    result["trained"] = bool(result["attempts"]) and result["attempts"][-1]["exit_code"] == 0
    Path(ns.out).write_text(json.dumps(result, indent=2))
    if log:
        log.close()
    return 0 if result["trained"] else 1


if __name__ == "__main__":
    sys.exit(main())
