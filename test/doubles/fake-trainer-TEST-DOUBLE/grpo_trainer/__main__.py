"""TEST DOUBLE of the built-in trainer's command-line contract (NOT the real trainer).

Used only by workflow tests that need deterministic timing (cancellation, crash + resume,
locks). The acceptance end-to-end test runs the real trainer under trainer/.
Knobs (env): FAKE_STEP_SECONDS (default 0.2), FAKE_CRASH_AT_STEP (exit 1 once at that step,
marker file in log_dir), FAKE_FAIL_TYPE (write failure.json with that type and exit 1),
FAKE_OOM_ABOVE_MICRO_BATCH=N (report OutOfMemory while policy.train_micro_batch_size > N),
FAKE_RATE_LIMIT_ONCE=1 (prepare-model reports RateLimited with retry_after 1 s, once).
build-traces and warm-start write the files the pipeline reads (a fake warmed model; no training);
a warm start whose model/ exists reports itself reused, as the real one does for identical inputs.

What it writes on disk follows the real trainer's contracts through the real trainer's own
code (imported under another name: this package shadows grpo_trainer): the retention of step_N
checkpoints (top keep_top_k by metric_name plus the newest, as the trainer owns it) and
<log_dir>/trainer_events.jsonl (contracts/trainer-events.schema.json).
"""
import functools
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import yaml

REAL_PACKAGE = Path(__file__).resolve().parents[4] / "trainer" / "grpo_trainer"
REAL_NAME = "real_grpo_trainer"


@functools.cache
def real_module(name):
    """`grpo_trainer.training.<name>` of the real trainer (checkpoints, events), imported as
    real_grpo_trainer.training.<name>: the real package under another name, so its relative
    imports (..contracts) resolve inside it and not in this double."""
    if REAL_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(REAL_NAME, REAL_PACKAGE / "__init__.py",
                                                      submodule_search_locations=[str(REAL_PACKAGE)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[REAL_NAME] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{REAL_NAME}.training.{name}")


def parse_overrides(args):
    cfg_path, overrides = None, {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--config":
            cfg_path = args[i + 1]
            i += 2
            continue
        k, _, v = a.lstrip("+").partition("=")
        overrides[k] = yaml.safe_load(v) if v != "" else ""
        i += 1
    cfg = yaml.safe_load(open(cfg_path)) if cfg_path else {}
    if isinstance(cfg, dict) and isinstance(cfg.get("trainer"), dict):
        cfg = cfg["trainer"]  # a pipeline config: the trainer reads its trainer: section, as the real one does
    for k, v in overrides.items():
        cur = cfg
        parts = k.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return cfg


def opt(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def fail(log_dir, typ, msg, step=None, code=1):
    os.makedirs(log_dir, exist_ok=True)
    json.dump({"type": typ, "message": msg, "step": step, "time": time.time()},
              open(os.path.join(log_dir, "failure.json"), "w"))
    print(f"error: {typ}: {msg}", flush=True)
    sys.exit(code)


def newest(ckdir):
    latest = real_module("checkpoints").latest_complete(ckdir)
    return latest.step if latest else 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "prepare-model":
        out = opt(args, "--out")
        marker = out.rstrip("/") + ".rate-limited-once"
        if os.environ.get("FAKE_RATE_LIMIT_ONCE") and not os.path.exists(marker):
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            open(marker, "w").write("x")
            json.dump({"type": "RateLimited", "message": "429 Too Many Requests", "step": None, "time": time.time(),
                       "retry_after": 1.0},
                      open(os.path.join(os.path.dirname(out.rstrip("/")), "failure.json"), "w"))
            sys.exit(1)
        os.makedirs(out, exist_ok=True)
        json.dump({"architectures": ["LlamaForCausalLM"], "fake": True}, open(os.path.join(out, "config.json"), "w"))
        open(os.path.join(out, "model.safetensors"), "wb").write(b"fake")
        print(json.dumps({"model_dir": out, "fingerprint": "fake-tiny" if "--tiny-random" in args else "fake"}))
    elif cmd == "prepare-data":
        out = opt(args, "--out-dir")
        os.makedirs(out, exist_ok=True)
        for name, n in (("train.jsonl", 8), ("validation.jsonl", 4)):
            with open(os.path.join(out, name), "w") as f:
                for i in range(n):
                    f.write(json.dumps({"id": i, "category": "email" if i % 2 else "calendar"}) + "\n")
        json.dump({"train": 8, "validation": 4}, open(os.path.join(out, "split_manifest.json"), "w"))
    elif cmd == "check-config":
        cfg = parse_overrides(args)
        if not isinstance(cfg.get("grpo", {}).get("max_num_steps"), int):
            print("grpo.max_num_steps: expected int", file=sys.stderr)
            sys.exit(2)
    elif cmd == "build-traces":
        out = opt(args, "--out")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            for i in range(3):
                trace = {"task_id": i, "category": "email", "tools": [], "messages": [{"role": "user", "content": "x"}]}
                f.write(json.dumps(trace) + "\n")
        print(json.dumps({"out": out, "tasks": 8, "traced": 3}))
    elif cmd == "warm-start":
        out = opt(args, "--out")
        model = os.path.join(out, "model")
        reused = os.path.isfile(os.path.join(model, "config.json"))
        if not reused:
            os.makedirs(model, exist_ok=True)
            warm_config = {"architectures": ["LlamaForCausalLM"], "fake": True, "warm": True}
            json.dump(warm_config, open(os.path.join(model, "config.json"), "w"))
            time.sleep(float(os.environ.get("FAKE_STEP_SECONDS", "0.2")))
        result = {"fingerprint": "fake-warm", "examples": 3, "steps": 2, "seconds": 0.2, "final_loss": 0.5,
                  "model_dir": model}
        json.dump(result, open(os.path.join(out, "warm_start.json"), "w"))
        print(json.dumps({"status": "ok", **result, "reused": reused}))
    elif cmd == "evaluate":
        out = opt(args, "--out")
        model = opt(args, "--model")
        acc = 0.1 + 0.05 * (int(re.search(r"step_(\d+)", model).group(1)) / 6 if re.search(r"step_(\d+)", model) else 0)
        if model.rstrip("/").endswith("/model"):  # the warmed model
            acc = 0.125
        # Per-task rewards as the real evaluator records them: the first round(acc * 4) tasks solved.
        results = [{"task_id": i, "reward": 1.0 if i < round(acc * 4) else 0.0, "category": "email"} for i in range(4)]
        json.dump({"accuracy": acc, "per_category": {"email": acc}, "num_tasks": 4, "transcripts": [],
                   "results": results, "model": model}, open(out, "w"))
    elif cmd == "export":
        out, src = opt(args, "--out"), opt(args, "--model")
        tmp = out.rstrip("/") + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        json.dump({"architectures": ["LlamaForCausalLM"], "fake": True}, open(os.path.join(tmp, "config.json"), "w"))
        json.dump({"source": src}, open(os.path.join(tmp, "grpo_export.json"), "w"))
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
        print(json.dumps({"out": out}))
    elif cmd == "train":
        cfg = parse_overrides(args)
        ck, g, log_dir = cfg["checkpointing"], cfg["grpo"], cfg["logger"]["log_dir"]
        ckdir = ck["checkpoint_dir"]
        os.makedirs(ckdir, exist_ok=True)
        os.makedirs(log_dir, exist_ok=True)
        if os.environ.get("FAKE_FAIL_TYPE"):
            fail(log_dir, os.environ["FAKE_FAIL_TYPE"], "injected failure", newest(ckdir))
        oom_above = os.environ.get("FAKE_OOM_ABOVE_MICRO_BATCH")
        micro = int(cfg.get("policy", {}).get("train_micro_batch_size", 4))
        if oom_above and micro > int(oom_above):
            fail(log_dir, "OutOfMemory", f"CUDA out of memory at micro batch {micro}", newest(ckdir))
        stop = int(g.get("stop_after_step", g["max_num_steps"]))
        step = newest(ckdir)
        crash_at = int(os.environ.get("FAKE_CRASH_AT_STEP", "0"))
        marker = os.path.join(log_dir, "crashed-once")
        print(f"resuming from step {step}, RAY_ADDRESS={os.environ.get('RAY_ADDRESS')}", flush=True)
        print(f"policy.model_name={cfg.get('policy', {}).get('model_name')}", flush=True)
        events = real_module("events")
        print(f"[grpo] training running from step {step}", flush=True)
        events.running(log_dir, step)
        while step < min(stop, g["max_num_steps"]):
            step += 1
            time.sleep(float(os.environ.get("FAKE_STEP_SECONDS", "0.2")))
            if crash_at and step == crash_at and not os.path.exists(marker):
                open(marker, "w").write("x")
                print("simulated crash", flush=True)
                os._exit(1)
            with open(os.path.join(log_dir, "metrics.jsonl"), "a") as f:
                f.write(json.dumps({"kind": "train", "step": step, "train/reward": 0.1 * step,
                                    "train/loss": 1.0 / step, "time": time.time()}) + "\n")
            val = None
            if step % g["val_period"] == 0:
                val = 0.1 + 0.05 * step / 6
                with open(os.path.join(log_dir, "metrics.jsonl"), "a") as f:
                    f.write(json.dumps({"kind": "validation", "step": step, "validation/accuracy": val}) + "\n")
            print(f"step {step}: reward {0.1*step:.3f}", flush=True)
            if step % ck["save_period"] == 0 or step == stop:
                tmp = os.path.join(ckdir, f"tmp_step_{step}")
                os.makedirs(tmp, exist_ok=True)
                info = {"total_steps": step, "current_step": step, "current_epoch": 0, "consumed_samples": step * 2}
                if val is not None:
                    info["val:accuracy"] = val
                json.dump(info, open(os.path.join(tmp, "training_info.json"), "w"))
                final = os.path.join(ckdir, f"step_{step}")
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
                removed = real_module("checkpoints").apply_retention(
                    ckdir, ck.get("metric_name", "val:accuracy"), ck.get("higher_is_better", True),
                    ck.get("keep_top_k", 3))
                events.checkpoint_saved(log_dir, step, final, removed)
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
