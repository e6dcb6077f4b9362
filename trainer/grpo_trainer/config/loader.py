"""Load a YAML config, apply `key=value` overrides, and validate before any work.

The file is either the trainer's own sections at the top level, or a pipeline
config (configs/*.yaml: `backend: builtin`, the pipeline's sections, and the
trainer's sections under `trainer:`), so the shipped configs exist once.
Every error names the offending key (dotted path) or file, so a user can fix
the config without reading a stack trace. The rules about the trainer's own
sections live here (and in training/schedule.py); the pipeline runs
`check-config` instead of keeping copies.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidConfigError
from ..training.pool_selection import SELECTIONS
from ..training.schedule import metric_warnings
from .schema import TrainerConfig

SECTIONS = tuple(f.name for f in dataclasses.fields(TrainerConfig))


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """Parse NeMo RL / Hydra-style overrides: `a.b=1`, `+a.b=1`, `++a.b=1`.

    Values are YAML scalars (`3`, `1e-5`, `true`, `null`, `[a, b]`). In our
    strict schema every key already exists, so the `+`/`++` prefixes only
    exist for compatibility with NeMo RL command lines.
    """
    parsed: list[tuple[str, Any]] = []
    for item in items:
        key, sep, raw = item.lstrip("+").partition("=")
        if not sep or not key:
            raise InvalidConfigError(item, "override must look like key=value (or ++key=value)")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise InvalidConfigError(key, f"cannot parse value {raw!r}: {exc}") from exc
        parsed.append((key.strip(), value))
    return parsed


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidConfigError(str(path), "config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidConfigError(str(path), f"not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidConfigError(str(path), f"top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _trainer_sections(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The trainer's sections of a file: its top level, or a pipeline config's `trainer:`."""
    if "trainer" not in data:
        return data
    backend = data.get("backend", "builtin")
    if backend != "builtin":
        raise InvalidConfigError("backend", f"{path} is a pipeline config for the {backend!r} backend; its trainer "
                                 "section is not the built-in trainer's (expected backend: builtin)")
    section = data["trainer"]
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise InvalidConfigError("trainer", f"{path}: expected a mapping of the trainer's sections, got {section!r}")
    return section


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InvalidConfigError(dotted, f"'{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except InvalidConfigError:
                continue
        expected = " or ".join(_type_name(a) for a in args)
        raise InvalidConfigError(key, f"expected {expected}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise InvalidConfigError(key, f"expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-5` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - schema uses only the types above
        raise TypeError(f"unsupported annotation {tp} at {key}")
    raise InvalidConfigError(key, f"expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidConfigError(prefix or "<root>", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else str(key)
            allowed = ", ".join(sorted(known))
            raise InvalidConfigError(where, f"unknown key (allowed here: {allowed})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            where = f"{prefix}.{f.name}" if prefix else f.name
            kwargs[f.name] = _coerce(data[f.name], hints[f.name], where)
    return cls(**kwargs)


def _require(cond: bool, key: str, reason: str) -> None:
    if not cond:
        raise InvalidConfigError(key, reason)


def validate(cfg: TrainerConfig, check_paths: bool = True) -> list[str]:
    """Semantic checks; returns warnings (errors raise InvalidConfigError)."""
    g, c, p = cfg.grpo, cfg.checkpointing, cfg.policy
    _require(g.num_prompts_per_step >= 1, "grpo.num_prompts_per_step", "must be >= 1")
    _require(g.num_generations_per_prompt >= 2, "grpo.num_generations_per_prompt",
             "must be >= 2 (GRPO compares generations of one prompt)")
    _require(g.max_num_steps >= 1, "grpo.max_num_steps", "must be >= 1")
    _require(g.max_num_epochs >= 1, "grpo.max_num_epochs", "must be >= 1")
    _require(g.val_period >= 0, "grpo.val_period", "must be >= 0 (0 disables periodic validation)")
    _require(g.stop_after_step is None or g.stop_after_step >= 1, "grpo.stop_after_step", "must be >= 1 or null")
    _require(g.segment_handoff_dir is None or g.stop_after_step is not None, "grpo.segment_handoff_dir",
             "needs grpo.stop_after_step (the step where the trainer waits for the next segment)")
    _require(g.segment_handoff_timeout_s > 0, "grpo.segment_handoff_timeout_s", "must be > 0 seconds")
    _require(g.max_val_samples is None or g.max_val_samples >= 1, "grpo.max_val_samples", "must be >= 1 or null")
    _require(g.val_batch_size is None or g.val_batch_size >= 1, "grpo.val_batch_size", "must be >= 1 or null")
    _require(c.save_period >= 1, "checkpointing.save_period", "must be >= 1")
    _require(c.keep_top_k >= 1, "checkpointing.keep_top_k", "must be >= 1")
    _require(c.metric_name.startswith(("val:", "train:")), "checkpointing.metric_name",
             "must start with 'val:' or 'train:' (e.g. val:accuracy)")
    _require(bool(c.checkpoint_dir), "checkpointing.checkpoint_dir", "must not be empty")
    _require(p.train_micro_batch_size >= 1, "policy.train_micro_batch_size", "must be >= 1")
    _require(p.packed_sequences or not p.packed_varlen_attention, "policy.packed_varlen_attention",
             "attends within packed rows, so it needs policy.packed_sequences=true")
    _require(p.precision in ("auto", "float32", "bfloat16"), "policy.precision",
             f"expected one of auto, float32, bfloat16, got {p.precision!r}")
    _require(p.trainable_layers is None or p.trainable_layers >= 1, "policy.trainable_layers", "must be >= 1 or null")
    _require(p.optimizer.lr > 0, "policy.optimizer.lr", "must be > 0")
    _require(p.scheduler.name in ("constant", "linear", "cosine"), "policy.scheduler.name",
             f"expected constant, linear or cosine, got {p.scheduler.name!r}")
    _require(p.generation.max_new_tokens >= 1, "policy.generation.max_new_tokens", "must be >= 1")
    _require(p.generation.temperature > 0, "policy.generation.temperature", "must be > 0 for GRPO sampling")
    _require(p.generation.val_temperature >= 0, "policy.generation.val_temperature", "must be >= 0")
    _require(0 < p.generation.top_p <= 1, "policy.generation.top_p", "must be in (0, 1]")
    _require(p.generation.top_k is None or p.generation.top_k >= 1, "policy.generation.top_k",
             "must be >= 1, or null for no top-k filter")
    _require(cfg.data.max_train_tasks is None or cfg.data.max_train_tasks >= g.num_prompts_per_step,
             "data.max_train_tasks", f"must be >= grpo.num_prompts_per_step ({g.num_prompts_per_step}) or null")
    _require(cfg.data.pool_selection in SELECTIONS, "data.pool_selection",
             f"expected one of {', '.join(SELECTIONS)}, got {cfg.data.pool_selection!r}")
    fewest_probes = (cfg.data.max_train_tasks or 1) if cfg.data.pool_selection != "random" else 1
    _require(cfg.data.pool_probe_tasks >= fewest_probes, "data.pool_probe_tasks",
             f"must be >= {fewest_probes} (with pass_rate or headroom, at least data.max_train_tasks)")
    _require(cfg.env.workplace_assistant.max_tool_steps >= 1, "env.workplace_assistant.max_tool_steps", "must be >= 1")
    _require(cfg.env.workplace_assistant.tools in ("domain", "all"), "env.workplace_assistant.tools",
             f"expected 'domain' or 'all', got {cfg.env.workplace_assistant.tools!r}")
    _require(cfg.cluster.num_workers is None or cfg.cluster.num_workers >= 1, "cluster.num_workers",
             "must be >= 1 or null")
    ws = cfg.warm_start
    _require(ws.epochs > 0, "warm_start.epochs", "must be > 0")
    _require(ws.max_examples is None or ws.max_examples >= 1, "warm_start.max_examples", "must be >= 1 or null")
    _require(ws.lr > 0, "warm_start.lr", "must be > 0")
    _require(ws.batch_size >= 1, "warm_start.batch_size", "must be >= 1")
    _require(ws.gradient_accumulation_steps >= 1, "warm_start.gradient_accumulation_steps", "must be >= 1")
    _require(ws.max_length >= 16, "warm_start.max_length", "must be >= 16 tokens")
    _require(ws.trainable_layers is None or ws.trainable_layers >= 1, "warm_start.trainable_layers",
             "must be >= 1 or null (all layers)")
    _require(ws.save_steps >= 1, "warm_start.save_steps", "must be >= 1")
    rs = g.reward_shaping
    _require(rs.overlong_buffer_length >= 0, "grpo.reward_shaping.overlong_buffer_length", "must be >= 0")
    _require(rs.max_response_length is None or rs.max_response_length > rs.overlong_buffer_length,
             "grpo.reward_shaping.max_response_length", "must exceed overlong_buffer_length")
    # No divisibility rule for train_micro_batch_size: training uses the largest batch up to
    # it that divides a worker's share of the step (grpo.batch_split) and says so at the start.
    total = g.num_prompts_per_step * g.num_generations_per_prompt
    _require(cfg.cluster.num_workers is None or total % cfg.cluster.num_workers == 0, "cluster.num_workers",
             f"must divide num_prompts_per_step * num_generations_per_prompt = {total} (every worker trains an "
             "equal share of each step)")
    if check_paths:
        _require(bool(p.model_name), "policy.model_name", "must name a Hugging Face model directory")
        model_dir = Path(p.model_name)
        _require(model_dir.is_dir() and (model_dir / "config.json").is_file(), "policy.model_name",
                 f"model directory not found or has no config.json: {model_dir}")
        for split in ("train", "validation"):
            path = getattr(cfg.data, split).data_path
            _require(bool(path), f"data.{split}.data_path", "must name a NeMo Gym JSONL file")
            _require(Path(path).is_file(), f"data.{split}.data_path", f"file not found: {path}")
    warnings = metric_warnings(c, g)
    if cfg.logger.wandb_enabled and importlib.util.find_spec("wandb") is None:
        warnings.append("logger.wandb_enabled: the wandb package is not installed in the trainer's environment "
                        "(it is not in the lock), so W&B stays off; TensorBoard is unaffected")
    return warnings


def load_config(path: str | Path | None, overrides: list[str] | None = None,
                check_paths: bool = True) -> tuple[TrainerConfig, list[str]]:
    raw: dict[str, Any] = _trainer_sections(_read_yaml(Path(path)), Path(path)) if path else {}
    for key, value in parse_overrides(overrides or []):
        if key.split(".")[0] not in SECTIONS:
            raise InvalidConfigError(key, f"unknown section (allowed: {', '.join(SECTIONS)})")
        _set_path(raw, key, value)
    cfg = _build(TrainerConfig, raw, "")
    warnings = validate(cfg, check_paths=check_paths)
    return cfg, warnings


def to_dict(cfg: TrainerConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
