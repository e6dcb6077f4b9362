"""TEST DOUBLE of NVIDIA NeMo RL's examples/nemo_gym/run_grpo_nemo_gym.py (NOT NeMo RL).

Part of grpo-pipeline's NeMo RL test double (test/doubles/nemo-rl-TEST-DOUBLE/, see its
README.md). No GPU, Ray, vLLM, Megatron or NeMo Gym is involved: this script reproduces what a
caller of the real GRPO recipe can observe, per /work/shared/research/nemo-rl.md (sections 1-5,
7, 10) and nemo-rl-contract.md, checked against NVIDIA-NeMo/RL at 7ea279a:

  * command line: `uv run python examples/nemo_gym/run_grpo_nemo_gym.py --config=<yaml> [overrides]`
    from the checkout root; every token argparse does not know is a Hydra override applied in
    struct mode (`key=v` only for existing keys, `+key=v` only for new ones, `++key=v` either way,
    `~key` deletes); failures are raised as OverridesError("Failed to parse Hydra overrides: ...");
  * the startup lines (`Loaded configuration from: ...`, `Overrides: [...]`, `📊 Using log
    directory: <log_dir>/exp_NNN`, ...), the per-step lines (epoch/step banners, `▶ ...` phases,
    `📊 Training Results:`, `  • Loss:`, `  • Avg Reward:`, timing), validation blocks and the end
    messages of the synchronous grpo_train loop;
  * checkpoints `tmp_step_N/` -> `step_N/` with training_info.json, config.yaml, policy/weights/
    iter_0000000/, policy/tokenizer/, train_dataloader.pt, plus latest_checkpoint_status.json, and
    the HEAD retention rule (top keep_top_k among step % save_period == 0 by metric_name, ties to
    the higher step, newest always kept), printing `Removing checkpoint <path> (step N)`;
  * automatic resume from the highest `checkpoint_dir/step_N`;
  * TensorBoard scalars (tensorboardX) under `<exp dir>/tensorboard/` when logger.tensorboard_enabled;
  * the non-interactive W&B failure when logger.wandb_enabled and no WANDB_API_KEY;
  * trajectory collection (`++env.nemo_gym.is_trajectory_collection=true`): no training, one JSON
    line per row of the *validation* dataloader (data.validation.data_path, as in the real
    collect_trajectories) appended to `<exp dir>/trajectory_collection.jsonl`.

Rewards are deterministic: a task is solved when hash(base model, task id) < skill(base model,
trained steps), and skill rises with the number of GRPO steps trained. policy.model_name may be
an HF id (untrained) or a directory written by the double's examples/converters/
convert_megatron_to_hf.py (its config.json records the base model and the steps trained), so a
later checkpoint solves a superset of the tasks an earlier one (or the base model) solves.

Environment variables (test knobs, all optional):
  FAKE_NRL_STEP_SECONDS   seconds each training step (and the collection batch) sleeps; default 0.5
  FAKE_NRL_FAIL_WITH      fault to inject: oom | ray | 429 | hang | config (default oom when only
                          FAKE_NRL_FAIL_AT_STEP is set)
  FAKE_NRL_FAIL_AT_STEP   global training step N (>= 1) at which the fault fires, inside that step
                          after its banner; 0 = during startup (also in evaluation mode). Default 1
                          when FAKE_NRL_FAIL_WITH is set. Evaluation mode has no training steps,
                          so N >= 1 never fires there.
  FAKE_NRL_FAIL_ONCE      1: fire the fault only once per checkpoint dir (a marker file
                          `.fake_nrl_fault_<kind>_step_<N>` is written there first), so a relaunch
                          with the same checkpoint dir succeeds
  FAKE_NRL_OOM_UNLESS     `<key>=<value>`: fail with the OOM text at training step 1 unless that
                          override (with any +/++ prefix, equal value) is on the command line
  WANDB_API_KEY, WANDB_MODE  read as wandb would (offline/disabled modes need no key); the double
                          never contacts W&B
  NRL_JOB_START_EPOCH, NRL_RAY_READY_EPOCH, SLURM_JOB_START_TIME  set by ray.sub: the
                          `CONTAINER INIT TIMING` block, as in the real run script
Faults print what NeMo RL shows (a Ray-wrapped torch.OutOfMemoryError, a Ray ActorDiedError, a
huggingface_hub 429, an omegaconf MissingMandatoryValue) as an uncaught exception: traceback on
stderr, exit status 1. `hang` prints nothing more and sleeps until killed.
"""

from __future__ import annotations

import argparse
import copy
import glob
import hashlib
import json
import math
import os
import pprint
import re
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

START_TIME = time.time()
BAR = "=" * 25
FAULT_KINDS = ("oom", "ray", "429", "hang", "config")


def out(*args: Any) -> None:
    print(*args, flush=True)


def err(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Exception types named like the libraries NeMo RL raises them from, so that an uncaught one
# prints the same last traceback line (`module.Class: message`) as the real stack would.
# ---------------------------------------------------------------------------------------------
def _foreign_exception(module: str, name: str, base: type[BaseException] = Exception) -> type:
    cls = type(name, (base,), {})
    cls.__module__ = module
    cls.__qualname__ = name
    return cls


OverridesError = _foreign_exception("nemo_rl.utils.config", "OverridesError")
ConfigCompositionException = _foreign_exception("hydra.errors", "ConfigCompositionException")
OverrideParseException = _foreign_exception("hydra.errors", "OverrideParseException")
ConfigAttributeError = _foreign_exception("omegaconf.errors", "ConfigAttributeError")
ConfigKeyError = _foreign_exception("omegaconf.errors", "ConfigKeyError")
InterpolationKeyError = _foreign_exception("omegaconf.errors", "InterpolationKeyError")
MissingMandatoryValue = _foreign_exception("omegaconf.errors", "MissingMandatoryValue")
ValidationError = _foreign_exception("pydantic_core._pydantic_core", "ValidationError", ValueError)
UsageError = _foreign_exception("wandb.errors.errors", "UsageError")
RequestsHTTPError = _foreign_exception("requests.exceptions", "HTTPError", OSError)
HfHubHTTPError = _foreign_exception("huggingface_hub.errors", "HfHubHTTPError", OSError)
RayTaskErrorOOM = _foreign_exception("ray.exceptions", "RayTaskError(OutOfMemoryError)")
ActorDiedError = _foreign_exception("ray.exceptions", "ActorDiedError")


# ---------------------------------------------------------------------------------------------
# YAML with OmegaConf-like float parsing (YAML 1.1 reads `1e-8` as a string; OmegaConf does not)
# ---------------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    pass


_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def load_yaml(path: str | Path) -> Any:
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


# ---------------------------------------------------------------------------------------------
# Config loading: `defaults:` inheritance (nemo_rl/utils/config.py load_config), Hydra overrides
# in struct mode, `${...}` interpolation with the resolvers NeMo RL registers.
# ---------------------------------------------------------------------------------------------
def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and value.get("_override_", False):
            value = {k: v for k, v in value.items() if k != "_override_"}
            merged[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(path: str | Path) -> dict:
    path = Path(path)
    config = load_yaml(path)
    if not isinstance(config, dict):
        raise AssertionError("Config must be a Dictionary Config (List Config not supported)")
    if "defaults" in config:
        defaults = config.pop("defaults")
        if isinstance(defaults, str):
            defaults = [defaults]
        base: dict = {}
        for parent in defaults:
            parent_path = Path(parent) if str(parent).startswith("/") else path.parent / str(parent)
            base = _merge(base, load_config(parent_path))
        config = _merge(base, config)
    return config


_INT_RE = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_HYDRA_FLOAT_RE = re.compile(r"^[-+]?(?:(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9_]+)?|[0-9][0-9_]*[eE][-+]?[0-9_]+)$")


def parse_override_value(text: str) -> Any:
    """A Hydra override value: quoted string, null, bool, int, float, inf/nan, [list] / {dict}
    (flow YAML) or a plain string, like Hydra's override grammar."""
    text = text.strip()
    if text == "":
        return ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace("\\" + text[0], text[0])
    if text[0] in "[{":
        try:
            return yaml.load(text, Loader=_Loader)
        except yaml.YAMLError:
            return text
    low = text.lower()
    if low == "null":
        return None
    if low in ("true", "false"):
        return low == "true"
    if _INT_RE.match(text):
        return int(text.replace("_", ""))
    if _HYDRA_FLOAT_RE.match(text) and any(c.isdigit() for c in text):
        return float(text.replace("_", ""))
    if low in ("inf", "+inf", "-inf", "nan", "+nan", "-nan"):
        return float(low)
    return text


_KEY_RE = re.compile(r"^[A-Za-z0-9_\-.$/@]+$")


def _split_override(line: str) -> tuple[str, str, str | None]:
    """-> (prefix '', '+', '++' or '~', key, raw value or None)."""
    prefix = ""
    body = line
    for candidate in ("++", "+", "~"):
        if body.startswith(candidate):
            prefix, body = candidate, body[len(candidate):]
            break
    if "=" in body:
        key, raw = body.split("=", 1)
    else:
        key, raw = body, None
    key = key.strip()
    if not key or not _KEY_RE.match(key) or (raw is None and prefix != "~"):
        where = "<EOF>" if raw is None else repr(raw)
        raise OverrideParseException(
            f"Error parsing override '{line}'\nmissing EQUAL at {where}\n"
            "See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details"
        )
    return prefix, key, raw


def _select(cfg: dict, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _not_in_struct(key: str) -> BaseException:
    leaf = key.split(".")[-1]
    return ConfigAttributeError(f"Key '{leaf}' is not in struct\n    full_key: {key}\n    object_type=dict")


def _update_struct(cfg: dict, key: str, value: Any) -> None:
    """OmegaConf.update(cfg, key, value, merge=True) with the struct flag on."""
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            raise _not_in_struct(key)
        node = node[part]
    leaf = parts[-1]
    if leaf not in node:
        raise _not_in_struct(key)
    if isinstance(value, dict) and isinstance(node[leaf], dict):
        for sub_key, sub_value in value.items():
            _update_struct(cfg, f"{key}.{sub_key}", sub_value)
    else:
        node[leaf] = value


def _update_force_add(cfg: dict, key: str, value: Any, line: str) -> None:
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        if part not in node or node[part] is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            raise ConfigCompositionException(f"Error merging override {line}")
        node = node[part]
    leaf = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        node[leaf] = _merge(node[leaf], value)
    else:
        node[leaf] = value


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """nemo_rl.utils.config.parse_hydra_overrides: struct mode + Hydra's override rules; any
    failure is re-raised as OverridesError("Failed to parse Hydra overrides: <message>")."""
    try:
        parsed = [(line, *_split_override(line)) for line in overrides]
        for line, prefix, key, raw in parsed:
            value = parse_override_value(raw) if raw is not None else None
            if prefix == "~":
                current = _select(cfg, key)
                if current is None:
                    raise ConfigCompositionException(f"Could not delete from config. '{key}' does not exist.")
                if raw is not None and value != current:
                    raise ConfigCompositionException(
                        f"Could not delete from config. The value of '{key}' is {current} and not {value}."
                    )
                parent = _select(cfg, key.rsplit(".", 1)[0]) if "." in key else cfg
                del parent[key.split(".")[-1]]
            elif prefix == "+":
                if _select(cfg, key) is None or isinstance(value, (dict, list)):
                    _update_force_add(cfg, key, value, line)
                else:
                    raise ConfigCompositionException(
                        f"Could not append to config. An item is already at '{key}'.\n"
                        f"Either remove + prefix: '{line[1:]}'\n"
                        f"Or add a second + to add or override '{key}': '+{line}'\n"
                    )
            elif prefix == "++":
                _update_force_add(cfg, key, value, line)
            else:
                try:
                    _update_struct(cfg, key, value)
                except (ConfigAttributeError, ConfigKeyError) as ex:
                    raise ConfigCompositionException(
                        f"Could not override '{key}'.\nTo append to your config use +{line}"
                    ) from ex
        return cfg
    except Exception as e:
        raise OverridesError(f"Failed to parse Hydra overrides: {str(e)}") from e


_RESOLVERS = {
    "mul": lambda a, b: a * b,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b,
    "max": lambda a, b: max(a, b),
}


def _split_args(text: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    args.append(text[start:])
    return [a.strip() for a in args]


class _Resolver:
    def __init__(self, root: dict):
        self.root = root
        self.depth = 0

    def lookup(self, key: str, node_path: list[str]) -> Any:
        dots = len(key) - len(key.lstrip("."))
        rel = key[dots:]
        base = node_path if dots == 0 else node_path[: len(node_path) - (dots - 1)]
        path = (list(base) if dots else []) + (rel.split(".") if rel else [])
        node: Any = self.root
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise InterpolationKeyError(
                    f"Interpolation key '{key}' not found\n    full_key: {'.'.join(node_path)}\n    object_type=dict"
                )
            node = node[part]
        return self.value(node, path[:-1])

    def evaluate(self, expr: str, node_path: list[str]) -> Any:
        match = re.match(r"^([A-Za-z_][\w.]*):(.*)$", expr, re.S)
        if match and (match.group(1) in _RESOLVERS or match.group(1) == "oc.env"):
            name, raw_args = match.group(1), match.group(2)
            args = [self.value(parse_override_value(a) if "${" not in a else a, node_path)
                    for a in _split_args(raw_args)]
            if name == "oc.env":
                return os.environ.get(str(args[0]), args[1] if len(args) > 1 else None)
            return _RESOLVERS[name](*args)
        return self.lookup(expr, node_path)

    def interpolate(self, text: str, node_path: list[str]) -> Any:
        pieces: list[Any] = []
        i = 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                pieces.append(text[i:])
                break
            pieces.append(text[i:start])
            depth, j = 0, start
            while j < len(text):
                if text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            pieces.append(("expr", text[start + 2: j]))
            i = j + 1
        pieces = [p for p in pieces if p != ""]
        if len(pieces) == 1 and isinstance(pieces[0], tuple):
            return self.evaluate(pieces[0][1], node_path)
        return "".join(str(self.evaluate(p[1], node_path)) if isinstance(p, tuple) else p for p in pieces)

    def value(self, value: Any, node_path: list[str]) -> Any:
        self.depth += 1
        try:
            if self.depth > 200:
                raise RecursionError("interpolation cycle")
            if isinstance(value, str) and "${" in value:
                return self.value(self.interpolate(value, node_path), node_path)
            if isinstance(value, dict):
                return {k: self.value(v, node_path) if not isinstance(v, dict) else self.node(v, node_path + [k])
                        for k, v in value.items()}
            if isinstance(value, list):
                return [self.value(v, node_path) for v in value]
            return value
        finally:
            self.depth -= 1

    def node(self, node: dict, path: list[str]) -> dict:
        return {k: self.node(v, path + [k]) if isinstance(v, dict) else self.value(v, path) for k, v in node.items()}


def resolve_config(cfg: dict) -> dict:
    return _Resolver(cfg).node(cfg, [])


REQUIRED_SECTIONS = ("policy", "loss_fn", "env", "data", "grpo", "logger", "cluster", "checkpointing")


def validate_master_config(cfg: dict) -> None:
    missing = [k for k in REQUIRED_SECTIONS if k not in cfg]
    if missing:
        lines = [f"{len(missing)} validation error{'s' if len(missing) > 1 else ''} for MasterConfig"]
        for key in missing:
            lines += [key, "  Field required [type=missing, input_value={...}, input_type=dict]"]
        raise ValidationError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Deterministic "skill": what a model (base id + GRPO steps trained) solves.
# ---------------------------------------------------------------------------------------------
def unit(*parts: Any) -> float:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def skill(base_model: str, trained_steps: int) -> float:
    start = 0.18 + 0.14 * unit("base-skill", base_model)
    return start + (0.92 - start) * (1.0 - math.exp(-max(trained_steps, 0) / 6.0))


def solves(base_model: str, task_key: str, trained_steps: int) -> bool:
    return unit("task", base_model, task_key) < skill(base_model, trained_steps)


def model_identity(model_name: str) -> tuple[str, int]:
    """(base model, GRPO steps already trained) of policy.model_name: an HF id is untrained; a
    directory written by the double's convert_megatron_to_hf.py says where it comes from."""
    config_json = Path(model_name) / "config.json"
    if config_json.is_file():
        try:
            info = json.loads(config_json.read_text()).get("nemo_rl_test_double") or {}
        except (OSError, ValueError, AttributeError):
            info = {}
        if isinstance(info, dict) and info.get("base_model"):
            return str(info["base_model"]), int(info.get("trained_steps", 0))
    return model_name, 0


def task_key(row: dict, index: int) -> str:
    return str(row.get("id", index)) if isinstance(row, dict) else str(index)


# ---------------------------------------------------------------------------------------------
# Faults on demand
# ---------------------------------------------------------------------------------------------
# Where each fault fires: inside a training step (after the named phase line), or at startup
# (step 0) at the point where NeMo RL would meet it.
STEP_PHASE = {"config": "batch", "429": "batch", "ray": "generation", "hang": "generation", "oom": "training"}
SETUP_PHASE = {"config": "config", "429": "tokenizer", "ray": "workers", "hang": "workers", "oom": "workers"}


class Faults:
    def __init__(self, checkpoint_dir: Path, overrides: list[str], model_name: str):
        self.kind = os.environ.get("FAKE_NRL_FAIL_WITH", "").strip().lower() or None
        at = os.environ.get("FAKE_NRL_FAIL_AT_STEP", "").strip()
        if at and self.kind is None:
            self.kind = "oom"
        if self.kind is not None and self.kind not in FAULT_KINDS:
            sys.exit(f"nemo-rl TEST DOUBLE: FAKE_NRL_FAIL_WITH must be one of {FAULT_KINDS}, got {self.kind!r}")
        self.at_step = int(at) if at else 1
        self.once = os.environ.get("FAKE_NRL_FAIL_ONCE", "") == "1"
        self.checkpoint_dir = checkpoint_dir
        self.oom_unless = os.environ.get("FAKE_NRL_OOM_UNLESS", "").strip() or None
        self.overrides = overrides
        self.model_name = model_name

    def check(self, step: int, phase: str) -> None:
        """Fire the configured fault if this is its step and phase (step 0 = startup)."""
        if self.kind is not None and step == self.at_step:
            expected = SETUP_PHASE[self.kind] if step == 0 else STEP_PHASE[self.kind]
            if phase == expected:
                if self.once:
                    marker = self.checkpoint_dir / f".fake_nrl_fault_{self.kind}_step_{step}"
                    if marker.exists():
                        return
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.write_text(f"fault {self.kind} fired at step {step} (nemo-rl TEST DOUBLE)\n")
                fire(self.kind, step, phase, self.model_name)
        if self.oom_unless and step == 1 and phase == "training" and not self.override_given():
            fire("oom", step, phase, self.model_name)

    def override_given(self) -> bool:
        want_key, _, want_raw = self.oom_unless.partition("=")
        want_key = want_key.lstrip("+").strip()
        want = parse_override_value(want_raw)
        for line in self.overrides:
            body = line.lstrip("+")
            if "=" not in body:
                continue
            key, raw = body.split("=", 1)
            if key.strip() == want_key and parse_override_value(raw) == want:
                return True
        return False


def _pid(step: int, salt: str) -> int:
    return 100000 + int(unit("pid", salt, step) * 800000)


def fire(kind: str, step: int, where: str, model_name: str) -> None:
    """Fail the way NeMo RL does (uncaught exception -> traceback on stderr, exit status 1)."""
    if kind == "hang":
        while True:  # a stall with no output (cf. NVIDIA-NeMo/RL#1846)
            time.sleep(3600)
    if kind == "oom":
        pid = _pid(step, "megatron")
        actor_id = hashlib.md5(f"actor{step}".encode()).hexdigest()[:32]
        method = "train" if where == "training" else "__init__"
        err(f"(MegatronPolicyWorker pid={pid}) torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.")
        raise RayTaskErrorOOM(
            f"ray::MegatronPolicyWorker.{method}() (pid={pid}, ip=10.0.0.1, actor_id={actor_id}, "
            "repr=MegatronPolicyWorker[rank=0])\n"
            '  File "/opt/nemo-rl/nemo_rl/models/policy/workers/megatron_policy_worker.py", line 1187, in train\n'
            "    losses_reduced = forward_backward_func(\n"
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
            "of 139.72 GiB of which 1.05 GiB is free. Including non-PyTorch memory, this process has 138.65 GiB "
            "memory in use. Of the allocated memory 131.20 GiB is allocated by PyTorch, and 5.43 GiB is reserved "
            "by PyTorch but unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
            "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
        )
    if kind == "ray":
        pid = _pid(step, "vllm")
        actor_id = hashlib.md5(f"vllm{step}".encode()).hexdigest()[:32]
        err(
            "(raylet) A worker died or was killed while executing a task by an unexpected system error. To "
            "troubleshoot the problem, check the logs for the dead worker. RayTask ID: "
            f"{actor_id[:24]}01000000 Worker ID: {actor_id[:28]} Node ID: {actor_id[4:32]} Worker IP address: "
            f"10.0.0.1 Worker port: 2003 Worker PID: {pid} Worker exit type: SYSTEM_ERROR Worker exit detail: "
            "Worker unexpectedly exits with a connection error code 2. End of file. There are some potential root "
            "causes. (1) The process is killed by SIGKILL by OOM killer due to high memory usage. (2) ray stop "
            "--force is called. (3) The worker is crashed unexpectedly due to SIGSEGV or other unexpected errors."
        )
        raise ActorDiedError(
            "The actor died unexpectedly before finishing this task.\n"
            "\tclass_name: VllmAsyncGenerationWorker\n"
            f"\tactor_id: {actor_id}\n"
            f"\tpid: {pid}\n"
            "\tnamespace: nemo_rl\n"
            "\tip: 10.0.0.1\n"
            "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit "
            "detail: Worker unexpectedly exits with a connection error code 2. End of file. There are some "
            "potential root causes. (1) The process is killed by SIGKILL by OOM killer due to high memory usage. "
            "(2) ray stop --force is called. (3) The worker is crashed unexpectedly due to SIGSEGV or other "
            "unexpected errors."
        )
    if kind == "429":
        url = f"https://huggingface.co/{model_name}/resolve/main/tokenizer_config.json"
        text = f"429 Client Error: Too Many Requests for url: {url}"
        try:
            try:
                raise RequestsHTTPError(text)
            except RequestsHTTPError as inner:
                raise HfHubHTTPError(text) from inner
        except HfHubHTTPError as hub:
            raise OSError(
                f"There was a specific connection error when trying to load {model_name}:\n{text}"
            ) from hub
    if kind == "config":
        key = "policy.generation.vllm_cfg.tool_parser_plugin"
        raise MissingMandatoryValue(f"Missing mandatory value: {key}\n    full_key: {key}\n    object_type=dict")
    raise AssertionError(kind)


# ---------------------------------------------------------------------------------------------
# Logging backends
# ---------------------------------------------------------------------------------------------
def get_next_experiment_dir(base_log_dir: str) -> str:
    """nemo_rl.utils.logger.get_next_experiment_dir: highest existing exp_NNN + 1, created now."""
    next_id = 1
    ids = []
    for path in glob.glob(os.path.join(base_log_dir, "exp_*")):
        match = re.search(r"exp_(\d+)", path)
        if match:
            ids.append(int(match.group(1)))
    if ids:
        next_id = max(ids) + 1
    new_dir = os.path.join(base_log_dir, f"exp_{next_id:03d}")
    os.makedirs(new_dir, exist_ok=True)
    return new_dir


class Logger:
    def __init__(self, cfg: dict):
        self.base_log_dir = cfg["log_dir"]
        self.writer = None
        if cfg.get("wandb_enabled"):
            wandb_dir = os.path.join(self.base_log_dir, "wandb")
            os.makedirs(wandb_dir, exist_ok=True)
            mode = os.environ.get("WANDB_MODE", "").lower()
            if not os.environ.get("WANDB_API_KEY") and mode not in ("offline", "disabled", "dryrun"):
                err("wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])")
                raise UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")
            run_id = hashlib.md5(f"{self.base_log_dir}{START_TIME}".encode()).hexdigest()[:8]
            run_dir = os.path.join(wandb_dir, time.strftime("run-%Y%m%d_%H%M%S-") + run_id)
            os.makedirs(run_dir, exist_ok=True)
            wandb_cfg = cfg.get("wandb") or {}
            err("wandb: Tracking run with wandb version 0.22.3")
            err(f"wandb: Run data is saved locally in {run_dir}")
            if mode in ("offline", "dryrun"):
                err("wandb: W&B syncing is set to `offline` in this directory. "
                    "Run `wandb online` to enable cloud syncing.")
            else:
                err(f"wandb: Syncing run {wandb_cfg.get('name')}")
                err(f"wandb: ⭐️ View project at https://wandb.ai/nemo-rl-test-double/{wandb_cfg.get('project')}")
        if cfg.get("tensorboard_enabled"):
            from tensorboardX import SummaryWriter

            tb_dir = os.path.join(self.base_log_dir, "tensorboard")
            os.makedirs(tb_dir, exist_ok=True)
            self.writer = SummaryWriter(logdir=tb_dir, flush_secs=1)

    def log_metrics(self, metrics: dict, step: int, prefix: str) -> None:
        if self.writer is None:
            return
        for name, value in metrics.items():
            self.writer.add_scalar(f"{prefix}/{name}" if prefix else name, float(value), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def jsonl(self, rows: list[dict], filename: str, mode: str = "w") -> None:
        filepath = os.path.join(self.base_log_dir, filename)
        os.makedirs(os.path.dirname(filepath), exist_ok=True)
        with open(filepath, mode) as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        out(f"Logged data to {filepath}")


# ---------------------------------------------------------------------------------------------
# Checkpoints (nemo_rl/utils/checkpoint.py CheckpointManager, HEAD)
# ---------------------------------------------------------------------------------------------
class Checkpointer:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.checkpoint_dir = Path(cfg["checkpoint_dir"])
        self.metric_name = cfg.get("metric_name")
        self.higher_is_better = cfg.get("higher_is_better", True)
        self.keep_top_k = cfg.get("keep_top_k")
        self.save_period = cfg["save_period"]
        self.ft_keep_latest_k = cfg.get("ft_keep_latest_k")

    def latest(self) -> str | None:
        dirs = [x for x in glob.glob(str(self.checkpoint_dir / "step_*")) if re.fullmatch(r"step_\d+", Path(x).name)]
        dirs.sort(key=lambda x: int(Path(x).name.split("_")[1]))
        return dirs[-1] if dirs else None

    @staticmethod
    def load_training_info(path: str | None) -> dict | None:
        if path is None:
            return None
        with open(Path(path) / "training_info.json") as f:
            return json.load(f)

    def save(self, step: int, info: dict, config: dict, weights_state: dict) -> Path:
        save_dir = self.checkpoint_dir / f"tmp_step_{step}"
        if save_dir.exists():
            t0 = time.monotonic()
            shutil.rmtree(save_dir)
            out(f"Removed stale {save_dir.name} in {time.monotonic() - t0:.2f}s")
        save_dir.mkdir(parents=True, exist_ok=True)
        with open(save_dir / "training_info.json", "w") as f:
            json.dump(info, f)
        with open(save_dir / "config.yaml", "w") as f:
            yaml.safe_dump(config, f)
        weights = save_dir / "policy" / "weights"
        iteration = weights / "iter_0000000"
        iteration.mkdir(parents=True)
        (weights / "latest_checkpointed_iteration.txt").write_text("0")
        (iteration / "metadata.json").write_text(json.dumps(
            {"sharded_backend": "torch_dist", "sharded_backend_version": 1,
             "common_backend": "torch", "common_backend_version": 1}))
        (iteration / "common.pt").write_bytes(b"nemo-rl TEST DOUBLE: not a torch file\n")
        (iteration / "run_config.yaml").write_text(yaml.safe_dump({"model": config["policy"]["model_name"]}))
        (iteration / "test_double_state.json").write_text(json.dumps(weights_state, indent=2))
        tokenizer = save_dir / "policy" / "tokenizer"
        tokenizer.mkdir(parents=True)
        write_tokenizer_files(tokenizer, config["policy"]["tokenizer"]["name"])
        (save_dir / "train_dataloader.pt").write_bytes(
            json.dumps({"nemo-rl TEST DOUBLE dataloader state": {"batches_yielded": info["current_step"]}}).encode())
        final = self.checkpoint_dir / f"step_{step}"
        if final.exists():
            old = self.checkpoint_dir / f"old_step_{step}"
            os.rename(final, old)
            os.rename(save_dir, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(save_dir, final)
        return final

    def write_status(self, step: int) -> None:
        path = self.checkpoint_dir / "latest_checkpoint_status.json"
        status = json.loads(path.read_text()) if path.exists() else {}
        status["last_successful_ckpt_save_completion"] = time.time()
        status["last_checkpoint_step"] = step
        path.write_text(json.dumps(status))

    def remove_old_checkpoints(self) -> None:
        history = []
        for step_dir in glob.glob(str(self.checkpoint_dir / "step_*")):
            if not re.fullmatch(r"step_\d+", Path(step_dir).name):
                continue
            info_file = Path(step_dir) / "training_info.json"
            if info_file.exists():
                history.append((int(Path(step_dir).name.split("_")[1]), step_dir, json.loads(info_file.read_text())))
        if not history or (self.keep_top_k is None and self.ft_keep_latest_k is None):
            return
        protected = {max(s for s, _, _ in history)}
        periodic = [h for h in history if h[0] % self.save_period == 0]
        if self.keep_top_k is not None:
            if self.metric_name is None:
                periodic.sort(key=lambda h: h[0], reverse=True)
            elif self.higher_is_better:
                periodic.sort(key=lambda h: (h[2].get(self.metric_name, -float("inf")), h[0]), reverse=True)
            else:
                periodic.sort(key=lambda h: (h[2].get(self.metric_name, float("inf")), -h[0]))
            protected.update(s for s, _, _ in periodic[: self.keep_top_k])
        else:
            protected.update(s for s, _, _ in periodic)
        if self.ft_keep_latest_k is not None:
            by_step = sorted(history, key=lambda h: h[0], reverse=True)
            protected.update(s for s, _, _ in by_step[: self.ft_keep_latest_k])
        for step, path, _ in sorted(history):
            if step not in protected:
                out(f"Removing checkpoint {path} (step {step})")
                shutil.rmtree(path)


def write_tokenizer_files(directory: Path, name: str) -> None:
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "name_or_path": name, "model_max_length": 131072,
         "chat_template": "{# nemo-rl TEST DOUBLE #}{% for m in messages %}{{ m['content'] }}{% endfor %}"},
        indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<SPECIAL_12>"}, indent=2))
    (directory / "tokenizer.json").write_text(json.dumps(
        {"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}, "added_tokens": []}))


# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
def parse_args() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description="Run GRPO training with configuration")
    parser.add_argument("--config", type=str, default=None, help="Path to YAML config file")
    return parser.parse_known_args()


def log_container_init_timing() -> None:
    job_start = os.environ.get("NRL_JOB_START_EPOCH")
    if not job_start:
        err("WARNING:root:Cannot detect container startup time: NRL_JOB_START_EPOCH not set. "
            "Ensure the launch script exports this variable for init timing.")
        return
    now = time.time()
    total = now - float(job_start)
    out("\n" + "=" * 60)
    out(" " * 14 + "CONTAINER INIT TIMING")
    slurm_start = os.environ.get("SLURM_JOB_START_TIME")
    if slurm_start:
        out(f"  slurm_prologue: {float(job_start) - float(slurm_start):.1f}s")
        total = now - float(slurm_start)
    ray_ready = os.environ.get("NRL_RAY_READY_EPOCH")
    if ray_ready:
        out(f"  cluster_startup (orchestrator+container+ray): {float(ray_ready) - float(job_start):.1f}s")
        out(f"  driver_startup (launch+python+imports): {now - float(ray_ready):.1f}s")
    out(f"  total: {total:.1f}s")
    out("=" * 60 + "\n")


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:  # FileNotFoundError names the path, as NemoGymDataset's open() does
        lines = [line for line in f if line.strip()]
    return [json.loads(line) for line in lines]


def parse_duration(text: str) -> float:
    days, hours, minutes, seconds = (int(x) for x in str(text).split(":"))
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def step_seconds() -> float:
    return float(os.environ.get("FAKE_NRL_STEP_SECONDS", "0.5"))


class Run:
    def __init__(self, config: dict, faults: Faults, train_rows: list[dict], val_rows: list[dict]):
        self.config = config
        self.grpo = config["grpo"]
        self.policy = config["policy"]
        self.model_name = str(self.policy["model_name"])
        self.base_model, self.pretrained_steps = model_identity(self.model_name)
        self.faults = faults
        self.train_rows = train_rows
        self.val_rows = val_rows

    # -- metrics -------------------------------------------------------------------------------
    def validation(self, step: int, total_steps: int) -> dict:
        t0 = time.time()
        out(f"▶ Starting validation at step {step}...")
        trained = self.pretrained_steps + total_steps
        generations = int(self.grpo.get("val_num_generations_per_prompt", 1) or 1)
        rewards = []
        rows = []
        for idx, row in enumerate(self.val_rows):
            reward = 1.0 if solves(self.base_model, task_key(row, idx), trained) else 0.0
            for _ in range(generations):
                rewards.append(reward)
                message = {"role": "assistant", "content": f"(test double rollout of task {task_key(row, idx)})"}
                rows.append({"content": [message], "rewards": reward, "idx": len(rows)})
        accuracy = sum(rewards) / len(rewards) if rewards else 0.0
        avg_length = 310.0 + 40.0 * unit("val-len", self.base_model, step) if rewards else 0.0
        elapsed = time.time() - t0
        out("\n📊 Validation Results:")
        out(f"    • Accuracy: {accuracy:.4f}")
        out(f"    • Average response length: {avg_length:.1f} tokens")
        out(f"    • Samples processed: {len(rewards)}")
        out("\n  ⏱️  Validation Timing:")
        out(f"    • Total validation time: {elapsed:.2f}s")
        self.logger.jsonl(rows, f"val_data_step{step}.jsonl")
        self.logger.log_metrics({"total_validation_time": elapsed}, step, "timing/validation")
        self.logger.log_metrics({"accuracy": accuracy, "avg_length": avg_length}, step, "validation")
        self.logger.flush()
        return {"accuracy": accuracy, "avg_length": avg_length}

    def train_reward(self, current_step: int, total_steps: int) -> float:
        prompts = int(self.grpo["num_prompts_per_step"])
        generations = int(self.grpo["num_generations_per_prompt"])
        batch = self.train_rows[current_step * prompts: (current_step + 1) * prompts]
        trained = self.pretrained_steps + total_steps
        target = skill(self.base_model, trained)
        solved = 0
        for idx, row in enumerate(batch):
            key = task_key(row, current_step * prompts + idx)
            for g in range(generations):
                solved += unit("rollout", self.base_model, key, g, total_steps + 1) < target
        return solved / max(1, len(batch) * generations)

    # -- setup (nemo_rl.algorithms.grpo.setup) -------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        t0 = time.time()
        self.logger = Logger(cfg["logger"])
        self.checkpointer = Checkpointer(cfg["checkpointing"])
        last = self.checkpointer.latest()
        loaded = self.checkpointer.load_training_info(last)
        self.state = {"consumed_samples": 0, "current_step": 0, "current_epoch": 0, "total_steps": 0,
                      "total_valid_tokens": 0}
        if loaded:
            self.state.update({k: v for k, v in loaded.items() if k in self.state})
        self.last_checkpoint = last
        self.steps_per_epoch = len(self.train_rows) // int(self.grpo["num_prompts_per_step"])
        out(f"  ✓ Training dataloader loaded with {self.steps_per_epoch} samples")
        if self.grpo["val_period"] > 0 or self.grpo["val_at_start"] or self.grpo.get("val_at_end"):
            out(f"  ✓ Validation dataloader loaded with {len(self.val_rows)} samples")
        out("\n▶ Setting up compute cluster...")
        nodes = cfg["cluster"]["num_nodes"]
        out(f"  ✓ Ray cluster for policy initialized with {nodes} nodes")
        out("\n▶ Setting up model and training...")
        out(f"  ✓ Using vLLM backend for generation with {self.model_name}")
        if last is not None:
            # setup() gives the policy the latest checkpoint's weights in every mode (training and
            # trajectory collection alike), so those weights, not policy.model_name's, are what runs.
            state_file = Path(last) / "policy" / "weights" / "iter_0000000" / "test_double_state.json"
            if state_file.is_file():
                saved = json.loads(state_file.read_text())
                self.base_model = str(saved.get("base_model", self.base_model))
                trained = int(saved.get("trained_steps", self.state["total_steps"]))
            else:
                trained = self.pretrained_steps + int(self.state["total_steps"])
            self.pretrained_steps = trained - int(self.state["total_steps"])
            # Sync GRPO prints no dedicated resume line of its own; the policy worker loads the
            # checkpoint's weights. This worker-prefixed line is the double's stand-in for that.
            out(f"(MegatronPolicyWorker pid={_pid(0, 'resume')}) Loading checkpoint from {last}/policy/weights "
                f"(resuming at step {self.state['total_steps']})")
        self.faults.check(0, "workers")
        out(f"(MegatronPolicyWorker pid={_pid(0, 'megatron')}) Checkpoint loaded")
        out("\n" + "=" * 60)
        out(" " * 18 + "SETUP COMPLETE")
        out(f"  Total setup time: {time.time() - t0:.1f}s")
        out("=" * 60 + "\n")

    # -- evaluation mode (collect_trajectories) -----------------------------------------------
    def collect_trajectories(self) -> None:
        out("\n🔍 Running trajectory collection...")
        time.sleep(step_seconds())
        rows = []
        trained = self.pretrained_steps + int(self.state["total_steps"])
        for idx, row in enumerate(self.val_rows):
            key = task_key(row, idx)
            reward = 1.0 if solves(self.base_model, key, trained) else 0.0
            record = dict(row) if isinstance(row, dict) else {"row": row}
            record["response"] = {
                "id": "resp_" + hashlib.md5(f"{self.model_name}|{key}".encode()).hexdigest()[:24],
                "object": "response",
                "model": self.model_name,
                "output": [{"type": "message", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": f"(test double rollout of task {key})"}]}],
            }
            record["reward"] = reward
            rows.append(record)
        self.logger.jsonl(rows, "trajectory_collection.jsonl", mode="a")

    # -- training (grpo_train) -----------------------------------------------------------------
    def train(self) -> None:
        grpo = self.grpo
        ckpt_cfg = self.config["checkpointing"]
        state = self.state
        current_step, total_steps = int(state["current_step"]), int(state["total_steps"])
        current_epoch = int(state["current_epoch"])
        consumed_samples, total_valid_tokens = int(state["consumed_samples"]), int(state["total_valid_tokens"])
        max_num_steps, max_num_epochs = int(grpo["max_num_steps"]), int(grpo["max_num_epochs"])
        val_period, val_start_at = int(grpo["val_period"]), int(grpo.get("val_start_at", -1) or -1)
        val_at_end = bool(grpo.get("val_at_end", False))
        batch_size = int(grpo["num_prompts_per_step"]) * int(grpo["num_generations_per_prompt"])
        must_save_by = ckpt_cfg.get("checkpoint_must_save_by")
        timeout_s = parse_duration(must_save_by) if must_save_by else None
        last_iteration = time.time()
        iteration_times: list[float] = []

        if grpo["val_at_start"] and current_step == 0:
            out("\n🔍 Running initial validation...")
            self.validation(0, 0)

        while current_epoch < max_num_epochs and total_steps < max_num_steps:
            out(f"\n{BAR} Epoch {current_epoch + 1}/{max_num_epochs} {BAR}")
            while current_step < self.steps_per_epoch:
                step_start = time.time()
                out(f"\n{BAR} Step {current_step + 1}/{min(self.steps_per_epoch, max_num_steps)} {BAR}")
                global_step = total_steps + 1
                out("▶ Preparing batch...")
                self.faults.check(global_step, "batch")
                out(f"▶ Generating responses for batch of size {batch_size}...")
                self.faults.check(global_step, "generation")
                time.sleep(step_seconds())
                reward = self.train_reward(current_step, total_steps)
                out("▶ Processing rewards...,")
                out("▶ Computing advantages...")
                out("▶ Preparing for logprob inference...")
                out("▶ Computing logprobs...")
                if grpo.get("skip_reference_policy_logprobs_calculation"):
                    out("▶ Skipping reference_logprobs (skip_reference_policy_logprobs_calculation=True)...")
                out("▶ Computing advantages...")
                out("▶ Preparing for training...")
                out("▶ Training policy...")
                self.faults.check(global_step, "training")
                loss = 0.04 * math.exp(-total_steps / 15.0) + 0.01 * (unit("loss", self.base_model, global_step) - 0.5)
                gen_tokens = 280.0 + 120.0 * unit("gen-len", self.base_model, global_step)
                total_valid_tokens += int(batch_size * (gen_tokens + 4200))

                is_last_step = global_step >= max_num_steps or (
                    current_epoch + 1 == max_num_epochs and current_step + 1 == self.steps_per_epoch)
                val_metrics = None
                if (val_period > 0 and global_step >= val_start_at and global_step % val_period == 0) or (
                        val_at_end and is_last_step):
                    val_metrics = self.validation(global_step, global_step)

                consumed_samples += int(grpo["num_prompts_per_step"])
                now = time.time()
                iteration_times.append(now - last_iteration)
                last_iteration = now
                save_by_timeout = timeout_s is not None and (
                    now - START_TIME + sum(iteration_times) / len(iteration_times) >= timeout_s)
                save_by_step = is_last_step or global_step % int(ckpt_cfg["save_period"]) == 0 or (
                    ckpt_cfg.get("ft_save_period") and global_step % int(ckpt_cfg["ft_save_period"]) == 0)
                checkpoint_time = 0.0
                if ckpt_cfg["enabled"] and (save_by_step or save_by_timeout):
                    c0 = time.time()
                    info = {"consumed_samples": consumed_samples, "current_step": current_step + 1,
                            "current_epoch": current_epoch, "total_steps": global_step,
                            "total_valid_tokens": total_valid_tokens}
                    if val_metrics is not None:
                        info["val_reward"] = val_metrics["accuracy"]
                    info["sampler_name"] = None
                    metric = ckpt_cfg.get("metric_name")
                    if metric is not None:
                        prefix, name = metric.split(":", 1)
                        source = {"loss": loss, "reward": reward} if prefix == "train" else val_metrics
                        if not source:
                            warnings.warn(f"You asked to save checkpoints based on {name} but no {prefix} metrics "
                                          "were collected. This checkpoint will not be saved as top-k.", stacklevel=1)
                        elif name not in source:
                            raise ValueError(f"Metric {name} not found in {prefix} metrics")
                        else:
                            info[metric] = source[name]
                    out(f"Saving checkpoint for step {global_step}...")
                    self.checkpointer.save(global_step, info, self.config, {
                        "nemo_rl_test_double": True, "policy_model_name": self.model_name,
                        "base_model": self.base_model, "trained_steps": self.pretrained_steps + global_step,
                        "step": global_step})
                    self.checkpointer.write_status(global_step)
                    self.checkpointer.remove_old_checkpoints()
                    checkpoint_time = time.time() - c0

                out("\n📊 Training Results:")
                out(f"  • Loss: {loss:.4f}")
                out(f"  • Generation KL Error: {0.0009 + 0.0004 * unit('kl', global_step):.4f}")
                out(f"  • Avg Reward: {reward:.4f}")
                out(f"  • Mean Generation Length: {gen_tokens:.4f}")
                total_time = time.time() - step_start
                timers = {"generation": 0.52, "policy_training": 0.24, "policy_and_reference_logprobs": 0.11,
                          "data_processing": 0.04, "reward_calculation": 0.02, "prepare_for_generation/total": 0.03,
                          "advantage_calculation": 0.01, "logprob_inference_prep": 0.01, "training_prep": 0.01}
                timing = {k: v * max(total_time - checkpoint_time, 0.0) for k, v in timers.items()}
                if checkpoint_time:
                    timing["checkpointing"] = checkpoint_time
                out("\n⏱️  Timing:")
                out(f"  • Total step time: {total_time:.2f}s")
                for name, value in sorted(timing.items(), key=lambda kv: kv[1], reverse=True):
                    out(f"  • {name}: {value:.2f}s ({(value / total_time * 100) if total_time > 0 else 0:.1f}%)")
                out("\n🔍 Performance Metrics:")
                out(f"  • Mean Total Tokens per Sample: {gen_tokens + 4200:.2f}")
                self.logger.log_metrics({"reward": reward, "loss": loss, "mean_gen_tokens_per_sample": gen_tokens,
                                         "total_valid_tokens": total_valid_tokens}, global_step, "train")
                self.logger.log_metrics({"total_step_time": total_time}, global_step, "timing/train")
                self.logger.flush()

                current_step += 1
                total_steps += 1
                if save_by_timeout:
                    out("Timeout has been reached, stopping training early")
                    return
                if total_steps >= max_num_steps:
                    out("Max number of steps has been reached, stopping training early")
                    return
            current_epoch += 1
            current_step = 0


def main() -> None:
    init_times: dict[str, float] = {}
    log_container_init_timing()
    args, overrides = parse_args()
    if not args.config:
        args.config = os.path.join(os.path.dirname(__file__), "grpo_workplace_assistant_nemotron_nano_v2_9b.yaml")

    t0 = time.time()
    config = load_config(args.config)
    out(f"Loaded configuration from: {args.config}")
    if overrides:
        out(f"Overrides: {overrides}")
        config = apply_overrides(config, overrides)
    config = resolve_config(config)
    validate_master_config(config)
    model_name = str(config["policy"]["model_name"])
    faults = Faults(Path(config["checkpointing"]["checkpoint_dir"]), overrides, model_name)
    faults.check(0, "config")
    out("Applied CLI overrides")
    init_times["config"] = time.time() - t0

    # Next exp_NNN under logger.log_dir (created now: every start gets a new one)
    config["logger"]["log_dir"] = get_next_experiment_dir(config["logger"]["log_dir"])
    out(f"📊 Using log directory: {config['logger']['log_dir']}")
    if config["checkpointing"]["enabled"]:
        out(f"📊 Using checkpoint directory: {config['checkpointing']['checkpoint_dir']}")
    sys.stdout.flush()

    t0 = time.time()
    faults.check(0, "tokenizer")  # the real get_tokenizer() reaches the HF Hub here
    # setup_nemo_gym_config(): generation goes through vLLM's async HTTP server for the Gym agents
    generation = config["policy"]["generation"]
    generation.setdefault("vllm_cfg", {})
    generation["vllm_cfg"]["async_engine"] = True
    generation["vllm_cfg"]["expose_http_server"] = True
    generation["stop_strings"] = None
    generation["stop_token_ids"] = None
    assert config["env"].get("should_use_nemo_gym"), "should_use_nemo_gym(config)"
    init_times["tokenizer"] = time.time() - t0

    t0 = time.time()
    out("\n▶ Setting up data...")
    out("\n▶ Setting up data...")
    train_path = str(config["data"]["train"]["data_path"])
    train_rows = read_jsonl(train_path)
    task = "-".join(train_path.split("/")[-2:]).split(".")[0].lstrip("-")
    out(f"  - Loaded training dataset {task} with {len(train_rows)} samples.")
    out(f"  ✓ Training dataset loaded with {len(train_rows)} samples.")
    val_rows: list[dict] = []
    validation = config["data"].get("validation")
    if validation is not None:
        val_path = str(validation["data_path"])
        val_rows = read_jsonl(val_path)
        val_task = "-".join(val_path.split("/")[-2:]).split(".")[0].lstrip("-")
        out(f"  - Loaded validation dataset {val_task} with {len(val_rows)} samples.")
        out(f"  ✓ Validation dataset loaded with {len(val_rows)} samples.")
    init_times["data"] = time.time() - t0

    if config["grpo"]["max_val_samples"] is not None:
        raise ValueError(
            "A non-null `grpo.max_val_samples` parameter is not supported.\n\nGym principle is that there is no "
            "hidden data pre or post processing from you. What you see is what you get.\n\nThe validation set you "
            "pass in will directly be used for validation with no additional preprocessing. If you want to have "
            "some number of repetitions, please include that in your dataset, via ``num_repeats``, in your dataset "
            "config and `ng_prepare_data` will prepare it accordingly."
        )
    if validation is not None:
        out("Setting `grpo.max_val_samples` and `grpo.val_batch_size` to the length of the validation "
              f"dataset, which is {len(val_rows)}")
        config["grpo"]["max_val_samples"] = len(val_rows)
        config["grpo"]["val_batch_size"] = len(val_rows)

    out("Final config:")
    pprint.pprint(config)
    sys.stdout.flush()

    t0 = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S,000")
    if os.environ.get("NRL_RAY_READY_EPOCH") or os.environ.get("RAY_ADDRESS"):
        err(f"{stamp}\tINFO worker.py:1660 -- Connecting to existing Ray cluster at address: 10.0.0.1:1200...")
    else:
        err(f"{stamp}\tINFO worker.py:1917 -- Started a local Ray instance.")
    init_times["ray_connect"] = time.time() - t0

    # A NeMo-RL-side switch: popped before the config goes to NeMo Gym
    is_trajectory_collection = bool(config["env"]["nemo_gym"].pop("is_trajectory_collection", False) or False)

    t0 = time.time()
    run = Run(config, faults, train_rows, val_rows)
    run.setup()
    init_times["setup"] = time.time() - t0
    init_times["total"] = time.time() - START_TIME
    out("\n" + "=" * 60)
    out(" " * 14 + "RL INIT TIMING BREAKDOWN")
    for label, value in sorted(init_times.items()):
        out(f"  {label}: {value:.1f}s")
    out("=" * 60 + "\n")

    try:
        if is_trajectory_collection:
            run.collect_trajectories()
        elif config["grpo"].get("async_grpo", {}).get("enabled"):
            out("🚀 Running async GRPO training")  # the double runs the same loop for both
            run.train()
        else:
            out("🚀 Running synchronous GRPO training")
            run.train()
    finally:
        out("🛑 Shutting down environment nemo_gym...")
        run.logger.close()


if __name__ == "__main__":
    main()
