"""GPU benchmark: one GRPO step of configs/builtin-gpu.yaml, split and held against two ceilings (issue #15).

Runs the built-in trainer in-process (no Ray), once per `--modes` entry, each in its
own child process: `eager` = HF `generate` with a dynamic KV cache (TRL's default,
`policy.generation.compiled_static_cache=false`); `compiled` = static KV cache and a
compiled decoding step (training/compiled_generation.py). Same config, seed and
data in both: the step shape of configs/builtin-gpu.yaml (8 tasks x 8 rollouts,
micro batch 16, 256 new tokens, up to 6 tool calls), no validation, no checkpoints.

Measured in the same run, before the children start (METHOD.md: measure the ceilings):
* copy bandwidth: a 2 GiB device-to-device copy, bytes read + written / time (median of 20);
* bf16 matmul rate: 8192 x 8192 x 8192 on random data (median of 10 after 3 warm-ups).

Per timed step (steps after `--warmup`), all times with `torch.cuda.synchronize()` at the edges:
* generation: TRL's `generate` calls (`_generate_single_turn`: first turn and tool turns);
* log-probs: `_get_per_token_logps_and_entropies` inside TRL's scoring (old/reference
  policy; none when beta = 0 and one update per generation, as here);
* training: forward + backward (`training_step` minus the scoring inside it) + gradient
  clipping + optimizer step;
* other: the rest (chat templates, tools, rewards, TRL's bookkeeping, callbacks).
Tokens: generated = tokens the policy sampled (tool results excluded); real = every token a
training forward and backward runs through except padding: prompt, sampled tokens and tool
results, which later tokens attend to, so their activations are computed and differentiated;
trained = TRL's `num_tokens` (our `train/trained_tokens`), which leaves the tool results out.

Ceilings, per step:
* decode roofline: for every `generate` call, prefill = 2 N x prompt tokens at the matmul
  rate, plus for every decoding step the bytes it must read at the copy bandwidth: all
  weights (bf16, N params, the tied LM head once) + the KV cache of every row still
  generating (layers x 2 x kv_heads x head_dim x 2 bytes per token of its context).
  `roofline_fraction` = that ideal time / measured generation time.
* MFU: training FLOPs = 6 N x real tokens + causal attention 6 x layers x hidden x
  mean length per token, over training time and the measured matmul rate; `mfu_step`
  also counts generation (2 N per prompt and generated token) and log-probs, over the step.
  (Before 2026-12-06 MFU counted TRL's `num_tokens`, 1.3-1.5x fewer tokens on real tool turns:
  docs/benchmarks.md, Change 9.)
Compiling: every step records `graphs_compiled`, the graphs torch.compile built during it; timed steps that
built any are listed as `timed_steps_that_compiled` and warned about, since their times include compiling
(raise --warmup). Peak GPU memory: `torch.cuda.max_memory_allocated` / `_reserved` over the timed steps
(and over the whole child, compilation included).

`--check` (compiled mode): after training, the graphs built during training are checked
against eager decoding at two shapes (the step's generation batch; 5 rows with a longer
prompt, as a tool turn), before and after an in-place change of every weight (as the
optimizer makes): relative error of the first 8 greedy steps' logits.

    python trainer/bench/bench_grpo_step_gpu.py --model DIR | --random-from DIR --data-dir DIR --out result.json \\
        [--modes eager,compiled] [--warmup 2] [--steps 3] [--check] [--set key=value ...]

`--training-variants padded,packed,compiled,packed+compiled,packed+varlen,packed+varlen+bins` (issue #15, Changes 5,
6, 8 and 9; `bins` packs varlen's rows as Change 8 did, in bins as long as the longest row, not one sequence): every
micro batch of every step is also run, before the step's own training, once per variant: the same inputs through
TRL's loss, forward and backward (`torch.autograd.grad`, so the step's own gradients are untouched), with
`policy.packed_sequences`, `policy.packed_varlen_attention` and `policy.compiled_training_forward` set as the
variant's name says. Timed on the timed steps (warm-up steps compile), and each variant's completion log-probs
are held against the padded eager path's on the same tokens. Reported per variant: seconds per step and MFU on
the real tokens (forward and backward only, no clipping or optimizer step), the tokens its forwards ran, and the
log-prob difference. These replays are left out of the step's own times. A variant that fails is reported under
`failed_training_variants` and left out from then on; the others go on.

`--random-from DIR`: DIR holds a model's config.json and tokenizer; the benchmark
builds a model of that shape with random weights (bf16, seed 0), which decode to the
full token budget (rarely an end-of-turn, no tool calls), so every step does the same work.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench_subprocess import run_captured

TRAINER_ROOT = Path(__file__).resolve().parents[1]
CONFIG = TRAINER_ROOT.parent / "configs" / "builtin-gpu.yaml"
sys.path.insert(0, str(TRAINER_ROOT))

MODES = {"eager": "false", "compiled": "true"}


# ---------------------------------------------------------------- ceilings
def median_seconds(fn: Any, reps: int, warmup: int, cuda: bool = True) -> float:
    """Median time of `fn` over `reps` runs after `warmup` untimed ones: CUDA events on the GPU, the wall
    clock otherwise."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_ceilings() -> dict[str, Any]:
    import torch

    def median_ms(fn: Any, reps: int, warm: int) -> float:
        return median_seconds(fn, reps, warm) * 1e3

    def copy_case(n: int) -> tuple[float, bool]:
        src = torch.randn(n, device="cuda", dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        return median_ms(lambda: dst.copy_(src), 20, 3), bool(torch.equal(dst, src))

    def matmul_case(m: int) -> float:
        a = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
        return median_ms(lambda: a @ b, 10, 3)

    n = 1 << 30  # 2 GiB of bf16
    copy_ms, ok = copy_case(n)
    m = 8192
    mm_ms = matmul_case(m)
    torch.cuda.empty_cache()
    return {"copy_bytes": 4 * n, "copy_ms": round(copy_ms, 4), "copy_checked": ok,
            "copy_bandwidth_gb_s": round(4 * n / copy_ms / 1e6, 1),
            "matmul_shape": [m, m, m], "matmul_ms": round(mm_ms, 4),
            "matmul_tflops": round(2 * m ** 3 / mm_ms / 1e9, 1)}


# ---------------------------------------------------------------- model
def make_random_model(src: Path, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(str(src))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    for f in src.iterdir():
        if f.is_file() and not (out / f.name).exists() and f.suffix not in (".safetensors", ".bin", ".gguf"):
            shutil.copy(f, out / f.name)


def model_shape(model: Any) -> dict[str, Any]:
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "layers": c.num_hidden_layers, "hidden": c.hidden_size, "heads": c.num_attention_heads,
            "kv_heads": c.num_key_value_heads, "head_dim": head_dim, "vocab": c.vocab_size,
            "kv_bytes_per_token": c.num_hidden_layers * 2 * c.num_key_value_heads * head_dim * 2,
            "dtype": str(next(model.parameters()).dtype)}


def decode_step_roofline_s(shape: dict[str, Any], context_tokens: float, copy_bandwidth_gb_s: float) -> float:
    """The decode roofline of one decoding step: every weight once plus the KV cache of `context_tokens` tokens
    (summed over the rows still generating), read at the copy bandwidth."""
    return (shape["weight_bytes"] + shape["kv_bytes_per_token"] * context_tokens) / (copy_bandwidth_gb_s * 1e9)


def training_flops(tokens: float, shape: dict[str, Any], mean_len: float) -> float:
    """The FLOPs MFU counts for training `tokens` tokens: 6 N per token (forward + backward of every weight) plus
    causal attention, 6 x layers x hidden x mean sequence length per token."""
    return tokens * (6 * shape["params"] + 6 * shape["layers"] * shape["hidden"] * mean_len)


TRAINING_SWITCHES = {"packed": "packed_sequences", "varlen": "packed_varlen_attention",
                     "bins": "varlen_in_bins", "compiled": "compiled_training_forward"}


def variant_switches(name: str) -> dict[str, bool]:
    """`padded`, `packed`, `compiled`, `packed+varlen` or any `+` of them -> the trainer attributes that name
    sets (varlen attends within packed rows, so only with packed; `bins` keeps varlen's rows in Change 8's
    bins instead of one sequence, so only with varlen)."""
    parts = set(name.split("+"))
    unknown = parts - {"padded", *TRAINING_SWITCHES}
    if (unknown or not parts or ("varlen" in parts and "packed" not in parts)
            or ("bins" in parts and "varlen" not in parts)):
        raise SystemExit(f"--training-variants: unknown variant {name!r}; use padded, packed, compiled, "
                         "packed+varlen, packed+varlen+bins or a + of them (varlen only with packed, bins only "
                         "with varlen)")
    return {attr: key in parts for key, attr in TRAINING_SWITCHES.items()}


# ---------------------------------------------------------------- child: one mode
class Recorder:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.cur: dict[str, Any] | None = None
        self.in_scoring = False
        self.t_last_train_end = 0.0
        self.t_pre_opt = 0.0
        self.timed = False
        self.peak: dict[str, float] = {"timed_alloc": 0.0, "timed_reserved": 0.0, "all_alloc": 0.0}

    def add(self, key: str, seconds: float) -> None:
        if self.cur is not None:
            self.cur[key] = self.cur.get(key, 0.0) + seconds


def step_line(step: dict[str, Any]) -> dict[str, Any]:
    """A step's phases and each training variant's seconds, rounded: the child's progress line."""
    line = {k: round(v, 2) for k, v in step.items() if k.endswith("_s") and isinstance(v, float)}
    line["step"] = step["step"]
    line["graphs_compiled"] = step.get("graphs_compiled", 0)
    line.update({f"variant_{name}_s": round(v["seconds"], 2) for name, v in step.get("variants", {}).items()})
    return line


def dynamo_graphs() -> int:
    """Graphs torch.compile has built in this process so far (recompiles included). A step that builds one
    spends part of its time compiling: with one micro batch a step, a warm-up step runs only one shape, and at 64
    rows the first timed step trained 3.3x slower than the second, most likely compiling (docs/benchmarks.md,
    Change 9)."""
    import torch._dynamo.utils as dynamo_utils

    return int(dynamo_utils.counters["stats"]["unique_graphs"])


def run_mode(ns: argparse.Namespace) -> int:
    import torch
    from transformers import TrainerCallback

    from grpo_trainer.config.loader import load_config
    from grpo_trainer.training.grpo import build_trainer

    overrides = json.loads(ns.child_overrides)
    cfg, warnings = load_config(str(ns.config), overrides)
    trainer, _state, _ = build_trainer(cfg)
    model = trainer.model
    rec = Recorder()
    cuda = torch.cuda.is_available()  # False only in a CPU smoke test of this script

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def now() -> float:
        sync()
        return time.perf_counter()

    mib = 2 ** 20

    def fold_peak() -> None:
        # Peak memory of the phase that ends here into the run's peaks, then a new phase starts.
        if not cuda:
            return
        alloc, reserved = torch.cuda.max_memory_allocated() / mib, torch.cuda.max_memory_reserved() / mib
        rec.peak["all_alloc"] = max(rec.peak["all_alloc"], alloc)
        if rec.timed:
            rec.peak["timed_alloc"] = max(rec.peak["timed_alloc"], alloc)
            rec.peak["timed_reserved"] = max(rec.peak["timed_reserved"], reserved)
        torch.cuda.reset_peak_memory_stats()

    def memory_now() -> tuple[float, float]:
        return (torch.cuda.memory_allocated() / mib, torch.cuda.max_memory_allocated() / mib) if cuda else (0.0, 0.0)

    gen_inner = trainer._generate_single_turn
    score_inner = trainer._generate_and_score_completions
    logps_inner = trainer._get_per_token_logps_and_entropies
    train_inner = trainer.training_step

    def generate(prompt_ids: list[list[int]], *a: Any, **k: Any) -> Any:
        t = now()
        fold_peak()
        before = memory_now()[0]
        out = gen_inner(prompt_ids, *a, **k)
        dt = now() - t
        rec.add("generation_s", dt)
        if rec.cur is not None:
            rec.cur.setdefault("calls", []).append({
                "batch": len(prompt_ids), "prompt_lens": [len(p) for p in prompt_ids],
                "completion_lens": [len(c) for c in out[0]], "seconds": dt,
                "max_cache_len": getattr(trainer.generation_config, "max_cache_len", None),
                "mem_before_mb": round(before, 1), "peak_mb": round(memory_now()[1], 1)})
        return out

    loss_inner = trainer.compute_loss
    variants = [v.strip() for v in (ns.training_variants or "").split(",") if v.strip()]
    if variants:  # the padded path runs first: every variant's log-probs are held against its
        variants = ["padded"] + [v for v in variants if v != "padded"]
    switches = {v: variant_switches(v) for v in variants}
    failed_variants: dict[str, str] = {}  # variant -> its error; left out from then on

    def replay_variants(model_: Any, inputs: Any) -> None:
        # Each variant's forward + backward on this micro batch; the gradients are returned, not accumulated.
        saved = {attr: getattr(trainer, attr) for attr in TRAINING_SWITCHES.values()}
        params = [p for p in model_.parameters() if p.requires_grad]
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        keep, scored = inputs["completion_ids"].size(1), inputs["completion_mask"].bool()
        reference = None
        t_all = now()
        try:
            for name in variants:
                if name in failed_variants:
                    continue
                for attr, on in switches[name].items():
                    setattr(trainer, attr, on)
                t = now()
                try:
                    torch.autograd.grad(loss_inner(model_, inputs), params)
                    seconds = now() - t
                    with torch.no_grad():
                        lp = logps_inner(model_, ids, mask, keep)[0].float()[scored]
                except Exception as exc:  # one variant that cannot run must not cost the others' numbers
                    if name == "padded":
                        raise
                    traceback.print_exc()
                    failed_variants[name] = f"{type(exc).__name__}: {exc}"[:2000]
                    continue
                reference = lp if reference is None else reference
                diff = (lp - reference).abs()
                if rec.cur is not None:  # warm-up steps too: their seconds are each variant's compile cost
                    v = rec.cur.setdefault("variants", {}).setdefault(name, {
                        "seconds": 0.0, "forward_tokens": 0, "logp_max_abs_diff": 0.0, "logp_abs_diff_sum": 0.0,
                        "scored_tokens": 0})
                    v["seconds"] += seconds
                    if switches[name]["packed_sequences"]:
                        packing = trainer.plan_packed_forward(mask)
                        v["forward_tokens"] += packing.num_bins * packing.bin_length
                    else:
                        v["forward_tokens"] += int(ids.numel())
                    v["logp_max_abs_diff"] = max(v["logp_max_abs_diff"], float(diff.max()) if diff.numel() else 0.0)
                    v["logp_abs_diff_sum"] += float(diff.sum())
                    v["scored_tokens"] += int(diff.numel())
        finally:
            for attr, on in saved.items():
                setattr(trainer, attr, on)
            rec.add("variants_s", now() - t_all)

    def compute_loss(model_: Any, inputs: Any, *a: Any, **k: Any) -> Any:
        if variants:
            replay_variants(model_, inputs)
        # One micro batch: its padded size and the memory it takes through forward + backward
        # (the peak is read at the end of training_step, after the backward).
        fold_peak()
        if rec.cur is not None:
            rows, length = inputs["prompt_ids"].size(0), inputs["prompt_ids"].size(1) + inputs["completion_ids"].size(1)
            real = int(inputs["prompt_mask"].sum()) + int(inputs["completion_mask"].sum())
            rec.cur.setdefault("micro_batches", []).append({"rows": rows, "padded_len": length, "real_tokens": real,
                                                            "mem_before_mb": round(memory_now()[0], 1)})
        return loss_inner(model_, inputs, *a, **k)

    def score(inputs: Any) -> Any:
        t = now()
        rec.in_scoring = True
        try:
            return score_inner(inputs)
        finally:
            rec.in_scoring = False
            rec.add("scoring_s", now() - t)

    def logps(*a: Any, **k: Any) -> Any:
        if not rec.in_scoring:
            return logps_inner(*a, **k)
        t = now()
        try:
            return logps_inner(*a, **k)
        finally:
            rec.add("logprobs_s", now() - t)

    def training_step(*a: Any, **k: Any) -> Any:
        t = now()
        try:
            return train_inner(*a, **k)
        finally:
            rec.t_last_train_end = now()
            rec.add("training_step_s", rec.t_last_train_end - t)
            if rec.cur is not None and rec.cur.get("micro_batches"):
                rec.cur["micro_batches"][-1]["peak_mb"] = round(memory_now()[1], 1)

    trainer._generate_single_turn = generate
    trainer._generate_and_score_completions = score
    trainer._get_per_token_logps_and_entropies = logps
    trainer.training_step = training_step
    trainer.compute_loss = compute_loss

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            if st.global_step == ns.warmup:
                fold_peak()
                rec.timed = True
            rec.cur = {"step": st.global_step + 1, "t0": now(), "graphs_before": dynamo_graphs()}

        def on_pre_optimizer_step(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            rec.t_pre_opt = now()
            rec.add("clip_s", rec.t_pre_opt - rec.t_last_train_end)

        def on_optimizer_step(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            rec.add("optimizer_s", now() - rec.t_pre_opt)

        def on_step_end(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            assert rec.cur is not None
            rec.cur["step_s"] = now() - rec.cur.pop("t0")
            rec.cur["graphs_compiled"] = dynamo_graphs() - rec.cur.pop("graphs_before")
            rec.steps.append(rec.cur)
            print("[bench] " + json.dumps(step_line(rec.cur)), flush=True)
            rec.cur = None
            # After every step, so that a run stopped by its time limit (or killed) keeps the steps it finished:
            # the parent summarises whatever this file holds.
            write_result(complete=False)

    import torch._dynamo.utils as dynamo_utils

    started = time.time()

    def write_result(complete: bool) -> dict[str, Any]:
        # The steps so far (complete=False: written after each step) or the whole run; the parent reads this file.
        fold_peak()  # a step's end is a phase boundary: its peak counts now
        result: dict[str, Any] = {
            "mode": ns.child_mode, "overrides": overrides, "config_warnings": warnings, "complete": complete,
            "compiled_generation": bool(getattr(trainer, "compiled_generation", False)),
            "cache_implementation": trainer.generation_config.cache_implementation,
            "disable_compile": trainer.generation_config.disable_compile,
            "generation_batch": trainer.args.generation_batch_size,
            "gradient_checkpointing": trainer.args.gradient_checkpointing,
            "per_device_train_batch_size": trainer.args.per_device_train_batch_size,
            "gradient_accumulation_steps": trainer.args.gradient_accumulation_steps,
            "model": model_shape(model), "train_wall_s": round(time.time() - started, 1),
            "dynamo_stats_after_training": dict(dynamo_utils.counters["stats"]),
            "failed_training_variants": failed_variants,
            "peak_memory": {"timed_steps_max_allocated_mb": round(rec.peak["timed_alloc"], 1),
                            "timed_steps_max_reserved_mb": round(rec.peak["timed_reserved"], 1),
                            "training_max_allocated_mb": round(rec.peak["all_alloc"], 1)},
            "steps": rec.steps,
        }
        metrics = Path(cfg.logger.log_dir) / "metrics.jsonl"
        records = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.is_file() else []
        trained = {r["step"]: r.get("train/trained_tokens") for r in records if r.get("kind") == "train"}
        for s in rec.steps:
            s["trained_tokens"] = trained.get(s["step"])
        partial = Path(f"{ns.out}.tmp")  # then renamed: a stop mid-write leaves the previous step's file whole
        partial.write_text(json.dumps(result, indent=2))
        partial.replace(ns.out)
        return result

    trainer.add_callback(StepTimer())
    trainer.train()
    result = write_result(complete=True)  # kept if the check below runs out of time
    if ns.check and result["compiled_generation"]:
        result["check"] = validity_check(trainer, model)
        result["dynamo_stats_after_check"] = dict(dynamo_utils.counters["stats"])
    Path(ns.out).write_text(json.dumps(result, indent=2))
    return 0


def validity_check(trainer: Any, model: Any) -> dict[str, Any]:
    """Compiled static-cache decoding (the graphs built in training) vs eager dynamic-cache decoding."""
    import torch

    from grpo_trainer.training.compiled_generation import static_cache_len

    base = copy.deepcopy(trainer.generation_config)
    base.do_sample = False
    base.temperature = base.top_p = base.top_k = base.min_p = None
    base.max_new_tokens = 8
    base.output_logits = True
    base.return_dict_in_generate = True
    eager = copy.deepcopy(base)
    eager.cache_implementation = None
    eager.disable_compile = True
    eager.max_cache_len = None
    gen = torch.Generator().manual_seed(1)
    shapes = [(trainer.args.generation_batch_size, 700), (5, 1400)]
    prompts = {s: torch.randint(3, model.config.vocab_size - 1, s, generator=gen) for s in shapes}

    from trl.models import unwrap_model_for_generation

    def logits(cfg: Any, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.to(model.device)
        # As TRL generates: gradient checkpointing off and TRL's generation kwargs on the model for the call.
        with (unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                          generation_kwargs=trainer.generation_kwargs,
                                          gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs)
              as unwrapped, torch.no_grad()):
            out = unwrapped.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=cfg)
        return torch.stack([x.float() for x in out.logits])  # [steps, batch, vocab]

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm())

    out: dict[str, Any] = {"shapes": [list(s) for s in shapes], "rows": []}
    before: dict[Any, torch.Tensor] = {}
    for phase in ("trained weights", "after in-place update of every weight"):
        for shape, ids in prompts.items():
            compiled = copy.deepcopy(base)
            compiled.max_cache_len = static_cache_len(ids.tolist(), base.max_new_tokens)
            t = time.time()
            c = logits(compiled, ids)
            tc = time.time() - t
            e = logits(eager, ids)
            steps = min(c.shape[0], e.shape[0])
            # Step t of a row has the same input in both only while the greedy tokens before it agree
            # (random weights give near-ties that bf16 rounding can flip): compare those positions.
            same = (c[:steps].argmax(-1) == e[:steps].argmax(-1)).int()
            prefix = torch.cat([torch.ones_like(same[:1]), same[:-1].cumprod(0)]).bool()  # [steps, batch]
            mask = prefix[1:]
            row = {"phase": phase, "batch": shape[0], "prompt_len": shape[1], "steps": steps,
                   "compiled_s": round(tc, 2),
                   "rel_err_prefill_step": round(rel(c[0], e[0]), 5),
                   "rel_err_decode_steps": round(rel(c[1:steps][mask], e[1:steps][mask]), 5) if mask.any() else None,
                   "decode_positions_compared": int(mask.sum()), "decode_positions": int(mask.numel()),
                   "greedy_tokens_equal": bool(torch.equal(c[:steps].argmax(-1), e[:steps].argmax(-1)))}
            if shape in before:
                row["compiled_change_vs_before_update"] = round(rel(c[:steps], before[shape][:steps]), 4)
            before[shape] = c
            out["rows"].append(row)
        with torch.no_grad():  # the optimizer's kind of update: same tensors, new values
            g = torch.Generator(device=model.device).manual_seed(2)
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g, device=p.device, dtype=p.dtype) * 0.02)
    decode_errs = [r["rel_err_decode_steps"] for r in out["rows"] if r["rel_err_decode_steps"] is not None]
    changes = [r["compiled_change_vs_before_update"] for r in out["rows"] if "compiled_change_vs_before_update" in r]
    out["max_rel_err_decode"] = max(decode_errs) if decode_errs else None
    out["min_change_after_update"] = min(changes) if changes else None
    out["passed"] = bool(decode_errs) and max(decode_errs) < 0.05 and bool(changes) and min(changes) > 0.2
    return out


# ---------------------------------------------------------------- parent: derived numbers
def training_seconds(step: dict[str, Any]) -> float:
    """A step's training part from its recorded phases: TRL's `training_step` less the scoring inside it and the
    variants' replays, plus gradient clipping and the optimizer step."""
    return (step.get("training_step_s", 0.0) - step.get("scoring_s", 0.0) - step.get("variants_s", 0.0)
            + step.get("clip_s", 0.0) + step.get("optimizer_s", 0.0))


def steps_from_progress(child_log: str, metrics_jsonl: str) -> list[dict[str, Any]]:
    """Per step of a run that left no result file (as every run stopped by its time limit did before the child
    wrote one after each step): its training seconds from the child's `[bench]` lines, which round each phase to
    0.01 s, and the tokens it trained (`train/packed_tokens`, the real tokens when no variant replays)."""
    lines = [json.loads(m) for m in re.findall(r"^\[bench\] (.*)$", child_log, re.M)]
    packed = {r["step"]: r["train/packed_tokens"] for r in map(json.loads, metrics_jsonl.splitlines())
              if r.get("kind") == "train"}
    return [{"step": x["step"], "training_s": training_seconds(x), "real_tokens": packed[x["step"]],
             "graphs_compiled": x.get("graphs_compiled")} for x in lines if x["step"] in packed]


def summarise(run: dict[str, Any], warmup: int, ceil: dict[str, Any]) -> dict[str, Any]:
    m = run["model"]
    n = m["params"]
    peak = ceil["matmul_tflops"] * 1e12
    timed = [s for s in run["steps"] if s["step"] > warmup]
    rows = []
    for s in timed:
        gen, lp = s.get("generation_s", 0.0), s.get("logprobs_s", 0.0)
        step_s = s["step_s"] - s.get("variants_s", 0.0)
        train = training_seconds(s)
        calls = s.get("calls", [])
        generated = sum(sum(c["completion_lens"]) for c in calls)
        prompt_tokens = sum(sum(c["prompt_lens"]) for c in calls)
        ideal = 0.0
        for c in calls:
            ideal += 2 * n * sum(c["prompt_lens"]) / peak
            for t in range(1, max(c["completion_lens"], default=0)):
                ctx = sum(p + t for p, g in zip(c["prompt_lens"], c["completion_lens"], strict=True) if g > t)
                ideal += decode_step_roofline_s(m, ctx, ceil["copy_bandwidth_gb_s"])
        trained = s.get("trained_tokens") or 0.0
        real = sum(x.get("real_tokens", 0) for x in s.get("micro_batches", []))
        rollouts = calls[0]["batch"] if calls else 0  # the first call is every rollout's first turn
        mean_len = real / rollouts if rollouts else 0.0
        train_flops = training_flops(real, m, mean_len)
        step_flops = train_flops + 2 * n * (generated + prompt_tokens) + (2 * n * real if lp else 0.0)
        # Memory per token, for sizing: generation (the first call: its KV cache and prefill) per token of its
        # longest sequence x rows; training per padded token of a micro batch (forward + backward).
        gen_kb = train_kb = None
        if calls and calls[0].get("peak_mb") is not None:
            c0 = calls[0]
            cache_tokens = c0["batch"] * (max(c0["prompt_lens"]) + max(c0["completion_lens"], default=0))
            gen_kb = (c0["peak_mb"] - c0["mem_before_mb"]) * 1024 / cache_tokens
        micro = [x for x in s.get("micro_batches", []) if x.get("peak_mb") is not None]
        if micro:
            train_kb = max((x["peak_mb"] - x["mem_before_mb"]) * 1024 / (x["rows"] * x["padded_len"]) for x in micro)
        variants = {name: {"seconds": v["seconds"], "forward_tokens": v["forward_tokens"],
                           "mfu_training": train_flops / v["seconds"] / peak if v["seconds"] else None,
                           "logp_max_abs_diff": v["logp_max_abs_diff"],
                           "logp_mean_abs_diff": v["logp_abs_diff_sum"] / max(v["scored_tokens"], 1)}
                    for name, v in s.get("variants", {}).items()}
        rows.append({
            "step": s["step"], "step_s": step_s, "gen_mem_kb_per_token": gen_kb, "training_variants": variants,
            "train_mem_kb_per_padded_token": train_kb,
            "micro_batch_padded_tokens": [x["rows"] * x["padded_len"] for x in micro],
            "generation_s": gen, "logprobs_s": lp, "training_s": train,
            "other_s": step_s - gen - lp - train, "generate_calls": len(calls),
            "generate_batches": [c["batch"] for c in calls], "max_cache_len": [c["max_cache_len"] for c in calls],
            "generated_tokens": generated, "trained_tokens": trained, "real_tokens": real,
            "generated_tokens_per_s": generated / gen if gen else None,
            "roofline_generation_s": ideal, "roofline_tokens_per_s": generated / ideal if ideal else None,
            "roofline_fraction": ideal / gen if gen else None,
            "trained_tokens_per_s": trained / train if train else None,
            "real_tokens_per_s": real / train if train else None,
            "mfu_training": train_flops / train / peak if train else None,
            "mfu_step": step_flops / step_s / peak, "graphs_compiled": s.get("graphs_compiled", 0),
        })

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.mean(vals), 4) if vals else None

    keys = ("step_s", "generation_s", "logprobs_s", "training_s", "other_s", "generated_tokens", "trained_tokens",
            "real_tokens", "generated_tokens_per_s", "roofline_tokens_per_s", "roofline_fraction",
            "trained_tokens_per_s", "real_tokens_per_s",
            "mfu_training", "mfu_step", "gen_mem_kb_per_token", "train_mem_kb_per_padded_token")
    # a variant that failed mid-run is reported under failed_training_variants, not averaged
    names = [n for n in (rows[0]["training_variants"] if rows else [])
             if all(n in r["training_variants"] for r in rows)]

    def significant(x: float) -> float:  # log-prob differences are ~1e-6 in fp32: rounding to 4 places hides them
        return float(f"{x:.3g}")

    variant_means = {name: {key: round(statistics.mean(r["training_variants"][name][key] for r in rows), 4)
                            for key in ("seconds", "forward_tokens", "mfu_training")}
                     | {"logp_mean_abs_diff": significant(statistics.mean(
                         r["training_variants"][name]["logp_mean_abs_diff"] for r in rows)),
                        "logp_max_abs_diff": significant(max(r["training_variants"][name]["logp_max_abs_diff"]
                                                             for r in rows))}
                     for name in names}
    return {"timed_steps": [r["step"] for r in rows],
            "timed_steps_that_compiled": [r["step"] for r in rows if r["graphs_compiled"]],
            "mean": {k: mean(k) for k in keys} | ({"training_variants": variant_means} if variant_means else {}),
            "per_step": rows,
            "warmup_step_s": [round(s["step_s"], 2) for s in run["steps"] if s["step"] <= warmup]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--model", help="HF model dir (prepare-model)")
    src.add_argument("--random-from", help="dir with config.json + tokenizer: random weights of that shape")
    parser.add_argument("--data-dir", help="train.jsonl / validation.jsonl (prepare-data)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="compiled vs eager logits after training (compiled)")
    parser.add_argument("--training-variants", default="",
                        help="e.g. padded,packed,compiled,packed+compiled: each micro batch's training timed each way")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--run-timeout", type=float, default=600)
    parser.add_argument("--child-mode", help=argparse.SUPPRESS)
    parser.add_argument("--child-overrides", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    ns.config = str(Path(ns.config).resolve())  # the children run in trainer/, not in the caller's directory
    for name in filter(None, (v.strip() for v in ns.training_variants.split(","))):
        variant_switches(name)  # an unknown name fails here, before any child starts
    if ns.child_mode:
        return run_mode(ns)
    if not (ns.model or ns.random_from) or not ns.data_dir:
        parser.error("--model or --random-from, and --data-dir, are required")

    import torch

    started = time.time()
    work = Path(ns.work_dir or tempfile.mkdtemp(prefix="bench-grpo-gpu-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(ns.out)
    cuda = torch.cuda.is_available()
    result: dict[str, Any] = {
        "benchmark": "grpo-step-gpu", "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda, "python": sys.version.split()[0], "config": ns.config,
        "warmup_steps": ns.warmup, "timed_steps": ns.steps, "runs": {}, "summary": {},
    }
    for pkg in ("transformers", "trl", "accelerate"):
        try:
            result[pkg] = __import__(pkg).__version__
        except ImportError:
            result[pkg] = None
    t = time.time()
    # Without CUDA (a smoke test of this script only) the ceilings are placeholders.
    result["ceilings"] = measure_ceilings() if cuda else {"copy_bandwidth_gb_s": 10.0, "matmul_tflops": 0.1,
                                                          "placeholder": True}
    result["ceilings"]["seconds"] = round(time.time() - t, 1)
    print(json.dumps({"ceilings": result["ceilings"]}), flush=True)
    model_dir = Path(ns.model).resolve() if ns.model else work / "random-model"
    if ns.random_from:
        make_random_model(Path(ns.random_from).resolve(), model_dir)
        result["model"] = f"random weights, shape of {ns.random_from}"
    else:
        result["model"] = str(model_dir)
    data = Path(ns.data_dir).resolve()

    def write() -> None:
        result["total_wall_s"] = round(time.time() - started, 1)
        out_path.write_text(json.dumps(result, indent=2))

    for mode in [m.strip() for m in ns.modes.split(",") if m.strip()]:
        run_dir = work / mode
        overrides = [
            f"policy.model_name={model_dir}", f"data.train.data_path={data / 'train.jsonl'}",
            f"data.validation.data_path={data / 'validation.jsonl'}",
            f"grpo.max_num_steps={ns.warmup + ns.steps}", "grpo.max_num_epochs=1000", "grpo.stop_after_step=null",
            "grpo.val_at_start=false", "grpo.val_at_end=false", "grpo.val_period=0",
            "checkpointing.enabled=false", "logger.tensorboard_enabled=false",
            f"checkpointing.checkpoint_dir={run_dir / 'checkpoints'}", f"logger.log_dir={run_dir / 'logs'}",
            f"policy.generation.compiled_static_cache={MODES[mode]}", *ns.overrides,
        ]
        child_out = run_dir / "result.json"
        run_dir.mkdir(parents=True, exist_ok=True)
        child_out.unlink(missing_ok=True)  # an earlier run's steps in a reused --work-dir are not this run's
        args = [sys.executable, __file__, "--out", str(child_out), "--config", ns.config, "--warmup", str(ns.warmup),
                "--child-mode", mode, "--child-overrides", json.dumps(overrides), *(["--check"] if ns.check else []),
                "--training-variants", ns.training_variants]
        env = {**os.environ, "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (str(TRAINER_ROOT), os.environ.get("PYTHONPATH")) if p)}
        print(f"--- {mode}: {ns.warmup} warm-up + {ns.steps} timed steps", flush=True)
        t = time.time()
        output, code = run_captured(args, env, TRAINER_ROOT, ns.run_timeout)
        (work / f"{mode}.log").write_text(output)
        run: dict[str, Any] = {"exit_code": code, "wall_s": round(time.time() - t, 1)}
        if child_out.is_file():  # also after a stop: the child writes its finished steps after each one
            run.update(json.loads(child_out.read_text()))
            run["summary"] = summarise(run, ns.warmup, result["ceilings"])
            result["summary"][mode] = run["summary"]["mean"] | {
                "peak_memory": run["peak_memory"], "warmup_step_s": run["summary"]["warmup_step_s"],
                "timed_steps_that_compiled": run["summary"]["timed_steps_that_compiled"],
                "complete": run["complete"]}
            if "check" in run:
                result["summary"][mode]["check_passed"] = run["check"]["passed"]
        if code != 0:
            run["output_tail"] = output[-4000:]
        result["runs"][mode] = run
        print(json.dumps({"mode": mode, "exit_code": code, **result["summary"].get(mode, {})}), flush=True)
        write()
    s = result["summary"]
    if "eager" in s and "compiled" in s and s["eager"].get("generated_tokens_per_s"):
        result["speedup"] = {k: round(s["compiled"][k] / s["eager"][k], 2)
                             for k in ("generated_tokens_per_s",) if s["compiled"].get(k)}
        result["speedup"]["step_time"] = round(s["eager"]["step_s"] / s["compiled"]["step_s"], 2)
    write()
    print(f"{'mode':9} {'step_s':>7} {'gen_s':>6} {'lp_s':>5} {'train_s':>7} {'other_s':>7} {'gen tok/s':>9} "
          f"{'roofline':>8} {'real tok/s':>11} {'MFU tr':>6} {'MFU st':>6} {'peak MiB':>8}")
    for mode, v in s.items():
        def f(key: str, spec: str, v: dict[str, Any] = v) -> str:
            return format(v[key], spec) if v.get(key) is not None else "-"
        print(f"{mode:9} {f('step_s', '7.2f')} {f('generation_s', '6.2f')} {f('logprobs_s', '5.2f')} "
              f"{f('training_s', '7.2f')} {f('other_s', '7.2f')} {f('generated_tokens_per_s', '9.0f')} "
              f"{f('roofline_fraction', '8.3f')} {f('real_tokens_per_s', '11.0f')} {f('mfu_training', '6.3f')} "
              f"{f('mfu_step', '6.3f')} {v['peak_memory']['timed_steps_max_allocated_mb']:8.0f}")
    for mode, v in s.items():
        for name, t in v.get("training_variants", {}).items():
            print(f"{mode:9} training {name:16} {t['seconds']:7.3f} s/step  MFU {t['mfu_training']:.3f}  "
                  f"forward tokens {t['forward_tokens']:9.0f}  log-prob diff mean {t['logp_mean_abs_diff']:.2e} "
                  f"max {t['logp_max_abs_diff']:.2e}")
    for mode, v in s.items():
        if not v["complete"]:
            print(f"{mode:9} WARNING: stopped before its last step; the means are of the timed steps it finished "
                  f"({len(result['runs'][mode]['summary']['per_step'])})")
        if v.get("timed_steps_that_compiled"):
            print(f"{mode:9} WARNING: timed steps {v['timed_steps_that_compiled']} compiled new graphs, so their "
                  "times include compiling: raise --warmup until no timed step compiles")
    for mode, run in result["runs"].items():
        for name, error in (run.get("failed_training_variants") or {}).items():
            print(f"{mode:9} training {name:16} FAILED: {error.splitlines()[0] if error else ''}")
    ok = all(r.get("exit_code") == 0 for r in result["runs"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
