"""`python -m grpo_trainer bfcl`: BFCL v3 scores of one model, from bfcl-eval's data and checkers.

Steps (run with the BFCL environment's python; the trainer environment's
python does the model work in a child process):

1. the model as an HF directory with our chat template: a checkpoint `step_N`
   is exported (`grpo_trainer export`); an HF dir that already carries our
   template is used as it is;
2. `grpo_trainer serve` on a free loopback port (OpenAI-compatible
   `/v1/completions`), unless `--server-url` names a running one;
3. bfcl-eval's generation (`bfcl_eval._llm_response_generation.main`, the code
   behind `bfcl generate --skip-server-setup --run-ids`) for the selected
   entries of each category, through our handler (`handler.py`);
4. bfcl-eval's checkers (`ast_file_runner` / `multi_turn_runner` /
   `relevance_file_runner` of `bfcl_eval.eval_checker.eval_runner`) on those
   entries, against bfcl-eval's own prompts and possible answers. The
   selection is evenly spaced over each category's entries in bfcl's order
   (`--limit`), so a CPU run fits; the entry ids are recorded;
5. `<out>/bfcl.json`: package version, data version, categories, per-category
   accuracy / correct / total / ids, settings and timings.

bfcl-eval writes its own result and score files under `<out>/bfcl/`
(`BFCL_PROJECT_ROOT`), next to the server and export logs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from . import BFCL_PACKAGE, MODEL_ID


def _has_our_template(model_dir: Path) -> bool:
    if not (model_dir / "config.json").is_file() or not (model_dir / "tokenizer_config.json").is_file():
        return False
    texts = []
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        if (model_dir / name).is_file():
            texts.append((model_dir / name).read_text(errors="replace"))
    return any("<tool_call>" in t and "render_tools" in t for t in texts)


def _trainer_env() -> dict[str, str]:
    env = dict(os.environ)
    trainer_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = trainer_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    # Idle OpenMP threads sleep instead of spinning: on a shared CPU, spinning threads of a 2-thread
    # torch process wait on descheduled peers and generation gets 5-8x slower (measured).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def prepare_model_dir(model: Path, out: Path, trainer_python: str | None, log) -> tuple[Path, float]:
    if _has_our_template(model):
        return model, 0.0
    if not trainer_python:
        raise SystemExit(f"{model} needs exporting (no HF dir with our chat template): pass --trainer-python")
    target = out / "model"
    started = time.time()
    cmd = [trainer_python, "-m", "grpo_trainer", "export", "--model", str(model), "--out", str(target), "--overwrite"]
    log(f"export: {' '.join(cmd)}")
    with open(out / "export.log", "w") as fh:
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_trainer_env())
    if code != 0:
        raise SystemExit(f"export failed (exit {code}); see {out / 'export.log'}")
    return target, time.time() - started


class Server:
    """`grpo_trainer serve` in its own process group, stopped with it."""

    def __init__(self, trainer_python: str, model_dir: Path, out: Path, args: argparse.Namespace, log) -> None:
        ready = out / "server.json"
        ready.unlink(missing_ok=True)
        cmd = [trainer_python, "-m", "grpo_trainer", "serve", "--model", str(model_dir), "--port", "0",
               "--model-name", MODEL_ID, "--max-tokens-cap", str(args.max_tokens), "--ready-file", str(ready),
               "--stop-after-tool-call"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        log(f"server: {' '.join(cmd)}")
        self.log_file = open(out / "server.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=_trainer_env(),
                                     start_new_session=True)
        deadline = time.time() + args.server_timeout
        while not ready.is_file() or not ready.read_text().strip():
            if self.proc.poll() is not None:
                raise SystemExit(f"the model server exited with {self.proc.returncode}; see {out / 'server.log'}")
            if time.time() > deadline:
                self.stop()
                raise SystemExit(f"the model server did not start within {args.server_timeout}s")
            time.sleep(0.5)
        self.url = json.loads(ready.read_text())["url"]  # http://127.0.0.1:PORT/v1

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log_file.close()


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return None


def select_ids(categories: list[str], limit: int, limit_for: dict[str, int]) -> dict[str, list[str]]:
    """Evenly spaced entry ids per category, in bfcl-eval's own order."""
    from bfcl_eval.constants.category_mapping import TEST_FILE_MAPPING
    from bfcl_eval.constants.eval_config import PROMPT_PATH
    from bfcl_eval.utils import load_file, sort_key

    chosen: dict[str, list[str]] = {}
    for cat in categories:
        if cat not in TEST_FILE_MAPPING:
            raise SystemExit(f"unknown BFCL category {cat!r}; bfcl-eval has: {', '.join(TEST_FILE_MAPPING)}")
        entries = sorted(load_file(PROMPT_PATH / TEST_FILE_MAPPING[cat]), key=sort_key)
        n = limit_for.get(cat, limit)
        if n <= 0 or n >= len(entries):
            picked = entries
        else:
            picked = [entries[(i * len(entries)) // n] for i in range(n)]
        chosen[cat] = [e["id"] for e in picked]
    return chosen


def evaluate(categories: dict[str, list[str]]) -> dict[str, Any]:
    """bfcl-eval's checkers on the generated entries (its `evaluate_task`, restricted to our ids)."""
    from bfcl_eval.constants.category_mapping import VERSION_PREFIX
    from bfcl_eval.constants.eval_config import POSSIBLE_ANSWER_PATH, PROMPT_PATH, RESULT_PATH, SCORE_PATH
    from bfcl_eval.eval_checker import eval_runner
    from bfcl_eval.utils import (
        find_file_with_suffix,
        is_java,
        is_js,
        is_multi_turn,
        is_relevance_or_irrelevance,
        load_file,
    )

    model_dir_name = MODEL_ID.replace("/", "_")
    handler = eval_runner.get_handler(MODEL_ID)
    results: dict[str, Any] = {}
    for cat, ids in categories.items():
        wanted = set(ids)
        result_file = RESULT_PATH / model_dir_name / f"{VERSION_PREFIX}_{cat}_result.json"
        model_result = [r for r in load_file(result_file, sort_by_id=True) if r["id"] in wanted]
        prompt = [e for e in load_file(find_file_with_suffix(PROMPT_PATH, cat), sort_by_id=True) if e["id"] in wanted]
        if [r["id"] for r in model_result] != [e["id"] for e in prompt]:
            raise SystemExit(f"{cat}: generated entries {len(model_result)} do not match the selected {len(prompt)}")
        language = "Java" if is_java(cat) else "JavaScript" if is_js(cat) else "Python"
        if is_relevance_or_irrelevance(cat):
            acc, total = eval_runner.relevance_file_runner(handler, model_result, prompt, model_dir_name, cat,
                                                           SCORE_PATH)
        else:
            answers = [a for a in load_file(find_file_with_suffix(POSSIBLE_ANSWER_PATH, cat), sort_by_id=True)
                       if a["id"] in wanted]
            if is_multi_turn(cat):
                acc, total = eval_runner.multi_turn_runner(handler, model_result, prompt, answers, model_dir_name,
                                                           cat, SCORE_PATH)
            else:
                acc, total = eval_runner.ast_file_runner(handler, model_result, prompt, answers, language, cat,
                                                         model_dir_name, SCORE_PATH)
        score_file = SCORE_PATH / model_dir_name / f"{VERSION_PREFIX}_{cat}_score.json"
        results[cat] = {"accuracy": acc, "correct": round(acc * total), "total": total, "ids": ids,
                        "score_file": str(score_file), "result_file": str(result_file)}
    return results


def main(args: argparse.Namespace) -> int:
    started = time.time()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    project = out / "bfcl"
    shutil.rmtree(project, ignore_errors=True)  # a retried run starts clean
    project.mkdir()
    (out / "bfcl.json").unlink(missing_ok=True)
    # bfcl-eval reads its project root (results, scores, the ids file) when first imported.
    os.environ["BFCL_PROJECT_ROOT"] = str(project)
    os.environ["GRPO_BFCL_PREFILL"] = "1" if args.prefill_tool_call else "0"

    def log(msg: str) -> None:
        print(f"[bfcl] {msg}", flush=True)

    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    from importlib.metadata import version

    from bfcl_eval._llm_response_generation import main as generation_main
    from bfcl_eval.constants.category_mapping import VERSION_PREFIX
    from bfcl_eval.constants.eval_config import TEST_IDS_TO_GENERATE_PATH

    from .handler import register

    register()
    package_version = version(BFCL_PACKAGE)
    ids = select_ids(categories, args.limit, args.limit_for)
    TEST_IDS_TO_GENERATE_PATH.write_text(json.dumps(ids, indent=2))
    log(f"{BFCL_PACKAGE} {package_version} ({VERSION_PREFIX}); entries: "
        + ", ".join(f"{c}={len(v)}" for c, v in ids.items()))

    model_dir, export_s = prepare_model_dir(Path(args.model).resolve(), out, args.trainer_python, log)
    server = None
    t0 = time.time()
    if args.server_url:
        base = args.server_url.rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
    else:
        if not args.trainer_python:
            raise SystemExit("pass --trainer-python (to start the model server) or --server-url")
        server = Server(args.trainer_python, model_dir, out, args, log)
        base = server.url
    server_start_s = time.time() - t0
    host_port = base.split("://", 1)[1].split("/", 1)[0]
    os.environ["VLLM_ENDPOINT"], _, os.environ["VLLM_PORT"] = host_port.rpartition(":")
    try:
        t1 = time.time()
        generation_main(SimpleNamespace(
            model=[MODEL_ID], test_category=categories, temperature=args.temperature, include_input_log=False,
            exclude_state_log=True, num_gpus=1, num_threads=1, gpu_memory_utilization=0.9, backend="vllm",
            skip_server_setup=True, local_model_path=str(model_dir), result_dir=None, allow_overwrite=True,
            run_ids=True))
        generate_s = time.time() - t1
        stats = _get_json(base.rsplit("/v1", 1)[0] + "/health") or {}
    finally:
        if server:
            server.stop()
    t2 = time.time()
    scores = evaluate(ids)
    evaluate_s = time.time() - t2
    total = sum(v["total"] for v in scores.values())
    correct = sum(v["correct"] for v in scores.values())
    summary = {
        "package": BFCL_PACKAGE,
        "version": package_version,
        "data_version": VERSION_PREFIX,
        "label": args.label,
        "model": str(Path(args.model).resolve()),
        "served_model_dir": str(model_dir),
        "model_id": MODEL_ID,
        "mode": "prompt (our chat template and <tool_call> format; bfcl-eval generation loop and checkers)",
        "categories": scores,
        # Unweighted mean over categories (bfcl's summary columns also average categories).
        "overall": {"accuracy": sum(v["accuracy"] for v in scores.values()) / len(scores) if scores else 0.0,
                    "correct": correct, "total": total},
        "settings": {"limit": args.limit, "limit_for": args.limit_for, "temperature": args.temperature,
                     "greedy": args.temperature <= 0.01, "max_tokens": args.max_tokens,
                     "stop_after_tool_call": not args.server_url,
                     "prefill_tool_call": bool(args.prefill_tool_call)},
        "server": {"url": base, "stats": stats},
        "timings": {"export_s": round(export_s, 1), "server_start_s": round(server_start_s, 1),
                    "generate_s": round(generate_s, 1), "evaluate_s": round(evaluate_s, 1),
                    "total_s": round(time.time() - started, 1)},
        "project_root": str(project),
    }
    (out / "bfcl.json").write_text(json.dumps(summary, indent=2) + "\n")
    log("scores: " + ", ".join(f"{c}={v['accuracy']:.3f} ({v['correct']}/{v['total']})" for c, v in scores.items())
        + f"; {summary['timings']['total_s']}s")
    print(json.dumps({k: summary[k] for k in ("package", "version", "data_version", "overall", "timings")}), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - use `python -m grpo_trainer bfcl`
    from .options import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
