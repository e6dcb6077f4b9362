"""GRPO on TRL's `GRPOTrainer` with the workplace environment.

What we add on top of TRL, and why:
* `_save_checkpoint` writes NeMo RL's layout atomically (checkpoints.py) and
  applies top-k retention, instead of HF's `checkpoint-N` folders;
* a callback validates at save steps (so `val:accuracy` lands in the
  checkpoint it ranks), logs NeMo RL-named metrics, and forces the save and
  stop at the last step or at `grpo.stop_after_step` (pipeline segments),
  or, with `grpo.segment_handoff_dir`, wait there for the next segment
  (handoff.py) so one process serves every segment;
* resume maps our layout back onto transformers' resume via a symlink view;
* with several workers (Ray Train, DDP through accelerate) each rank gets its
  slice of every step's rollouts, validation is split across ranks and
  gathered, and rank 0 alone writes checkpoints and metrics (the other ranks
  add their RNG state to the same `tmp_step_N` between two barriers).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .. import failures
from ..config.schema import TrainerConfig
from ..data.tasks import load_tasks
from ..errors import InvalidConfigError, InvalidDataError, ModelLoadError, RayFailureError
from ..model.chat_format import install_chat_format
from ..rollout.episodes import rollout_token_budget, run_episodes, summarise
from ..rollout.sampling import Sampling
from ..rollout.tool_env import ALL_TOOLS_KEY, env_class, tool_set_for
from . import checkpoints as ckpt
from . import events, pool_selection, schedule
from .compiled_generation import CompiledGenerationMixin
from .compiled_generation import wanted as compiled_generation_wanted
from .compiled_training import CompiledTrainingForwardMixin
from .handoff import wait_for_next_segment
from .identity import check_resume, run_identity
from .length_grouping import LengthGroupedBatchesMixin
from .metrics import MetricsLogger, peak_memory_mb, report_to, step_line, wandb_settings
from .packed_sequences import PackedSequencesMixin


def _device_and_dtype(cfg: TrainerConfig) -> tuple[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    precision = cfg.policy.precision
    if precision == "auto":
        precision = "bfloat16" if cuda else "float32"
    return ("cuda" if cuda else "cpu"), getattr(torch, precision)


def load_policy(model_dir: str, dtype: Any, trainable_layers: int | None = None,
                prefill_tool_call: bool = False) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    weights_dir, tokenizer_dir = ckpt.policy_dirs(model_dir)
    try:
        tokenizer = install_chat_format(AutoTokenizer.from_pretrained(str(tokenizer_dir)), prefill_tool_call)
        model = AutoModelForCausalLM.from_pretrained(str(weights_dir), dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a model from {model_dir}: {exc}") from exc
    if trainable_layers is not None:
        freeze_below(model, trainable_layers)
    return model, tokenizer


def freeze_below(model: Any, trainable_layers: int) -> None:
    """Train only the top `trainable_layers` decoder layers and the final norm."""
    layers = model.model.layers
    for param in model.parameters():
        param.requires_grad_(False)
    for layer in layers[max(0, len(layers) - trainable_layers):]:
        for param in layer.parameters():
            param.requires_grad_(True)
    for param in model.model.norm.parameters():
        param.requires_grad_(True)


def load_split(path: str, categories: list[str] | None) -> list[Any]:
    tasks = load_tasks(path)
    if categories:
        tasks = [t for t in tasks if t.category in categories]
    if not tasks:
        raise InvalidDataError(path, None, f"no tasks left (category filter: {categories})")
    return tasks


def _training_pool(cfg: TrainerConfig, tasks: list[Any], model: Any, tokenizer: Any, rank: int,
                   world_size: int) -> list[Any]:
    """The tasks GRPO draws from (pool_selection.py). A probed pool is chosen once, by rank 0,
    before the first step, and read back from the checkpoint directory after that. The probe decodes as
    offline evaluation does (the compiled static cache on CUDA, about 7x faster), training has not begun."""
    d, g = cfg.data, cfg.grpo
    if d.pool_selection == "random" or d.max_train_tasks is None:
        return pool_selection.seeded_sample(tasks, d.max_train_tasks, g.seed)
    checkpoint_dir = cfg.checkpointing.checkpoint_dir
    if pool_selection.read_choice(checkpoint_dir) is None and rank == 0:
        compiled = compiled_generation_wanted(cfg.policy.generation.compiled_static_cache, _device_and_dtype(cfg)[0])

        rollouts = Sampling.rollouts(cfg.policy.generation)

        def run(batch: list[Any], sampling: Sampling = rollouts) -> list[Any]:
            return run_episodes(model, tokenizer, batch, tool_mode=cfg.env.workplace_assistant.tools,
                                max_tool_steps=cfg.env.workplace_assistant.max_tool_steps,
                                max_new_tokens=cfg.policy.generation.max_new_tokens,
                                sampling=sampling, batch_size=len(batch),
                                max_total_tokens=cfg.policy.max_total_sequence_length, compiled=compiled,
                                grouped_attention=cfg.policy.generation.grouped_decode_attention)

        def run_greedy(batch: list[Any]) -> list[Any]:
            return run(batch, Sampling.validation(cfg.policy.generation))

        import torch

        torch.manual_seed(g.seed)
        was_training = model.training
        model.eval()
        headroom = d.pool_selection == "headroom"
        print(f"[grpo] choosing {d.max_train_tasks} training tasks by "
              f"{'headroom' if headroom else 'pass rate'}: up to {d.pool_probe_tasks} candidates, "
              + ("one greedy episode each, then " if headroom else "")
              + f"{g.num_generations_per_prompt} sampled rollouts each" + (" where greedy fails" if headroom else ""),
              flush=True)
        probe = pool_selection.episode_probe(run, g.num_generations_per_prompt)
        screen = pool_selection.greedy_screen(run_greedy)

        # One line per batch: the pipeline reads a silent trainer as a hung one.
        def probe_and_say(batch: list[Any]) -> list[Any]:
            probes = probe(batch)
            print("[grpo] probed " + " ".join(f"{p.task_id}:{p.solved}/{p.rollouts}" for p in probes), flush=True)
            return probes

        def screen_and_say(batch: list[Any]) -> list[bool]:
            solved = screen(batch)
            print("[grpo] greedy " + " ".join(f"{t.id}:{int(s)}" for t, s in zip(batch, solved, strict=True)),
                  flush=True)
            return solved

        choice = pool_selection.choose_pool(
            tasks, size=d.max_train_tasks, selection=d.pool_selection, seed=g.seed, probe_limit=d.pool_probe_tasks,
            chunk=max(1, (g.val_batch_size or 8) // g.num_generations_per_prompt), probe=probe_and_say,
            screen=screen_and_say, screen_chunk=g.val_batch_size or 8)
        model.train(was_training)
        path = pool_selection.write_choice(checkpoint_dir, choice)
        test = "greedy failing, a sampled rollout solving" if headroom else "a mixed pass rate"
        print(f"[grpo] training pool {choice.task_ids}: {choice.qualified} of {len(choice.task_ids)} with {test}, "
              f"{len(choice.probes)} probed in {choice.seconds:.0f}s -> {path}", flush=True)
    # The other ranks wait for rank 0's file rather than in a collective, whose timeout a slow probe
    # could outlast; if rank 0 dies, Ray Train ends the whole worker group.
    while (choice := pool_selection.read_choice(checkpoint_dir)) is None:
        time.sleep(1.0)
    return pool_selection.tasks_of(choice, tasks, d.train.data_path)


def validation_subset(tasks: list[Any], limit: int | None) -> list[Any]:
    """Evenly spaced tasks, so a small limit still spans every category."""
    if limit is None or limit >= len(tasks):
        return tasks
    stride = len(tasks) / limit
    return [tasks[int(i * stride)] for i in range(limit)]


def _dataset(tasks: list[Any], tool_mode: str) -> Any:
    from datasets import Dataset

    rows = []
    for task in tasks:
        row = {"prompt": task.messages, "ground_truth": json.dumps(task.ground_truth),
               "category": task.category, "task_id": str(task.id)}
        if tool_mode == "domain":
            row["environment"] = tool_set_for(task.category, tool_mode)
        rows.append(row)
    return Dataset.from_list(rows)


def _shaping_key(cfg: TrainerConfig) -> tuple[tuple[str, float], ...] | None:
    rs = cfg.grpo.reward_shaping
    if not rs.enabled:
        return None
    return (("format_credit", rs.format_credit), ("tool_name_credit", rs.tool_name_credit))


def _attempted_call_reward(credit: float) -> Any:
    """Shaping only: a little credit for an unparsable attempt at `<tool_call>`."""
    def attempted_tool_call(completions: list[list[dict[str, Any]]], **_: Any) -> list[float]:
        rewards = []
        for messages in completions:
            text = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "assistant")
            rewards.append(credit / 2 if "<tool_call>" in text else 0.0)
        return rewards
    return attempted_tool_call


def _task_solved() -> Any:
    """Metric only (weight 0): whether each rollout solved its task, NeMo Gym's unshaped 0/1 reward.
    With reward shaping on, `train/reward` mixes success with credit for format and tool names;
    TRL logs this column's mean as `train/rewards/task_solved/mean`."""
    def task_solved(environments: list[Any] | None = None, **_: Any) -> list[float]:
        return [float(env.outcome() == 1.0) for env in environments or []]
    return task_solved


def _overlong_penalty(max_len: int, buffer: int, penalty: float) -> Any:
    """DAPO soft overlong punishment on the whole multi-turn completion."""
    def overlong_penalty(completion_ids: list[list[int]], **_: Any) -> list[float]:
        out = []
        for ids in completion_ids:
            excess = len(ids) - (max_len - buffer)
            out.append(0.0 if excess <= 0 else -penalty * min(1.0, excess / buffer))
        return out
    return overlong_penalty


def total_steps(cfg: TrainerConfig, num_train_tasks: int) -> int:
    per_epoch = num_train_tasks // cfg.grpo.num_prompts_per_step
    if per_epoch < 1:
        raise InvalidDataError(cfg.data.train.data_path, None,
                               f"{num_train_tasks} tasks are fewer than grpo.num_prompts_per_step")
    return min(cfg.grpo.max_num_steps, cfg.grpo.max_num_epochs * per_epoch)


def batch_split(total: int, micro_batch: int, world_size: int) -> tuple[int, int]:
    """(per-device batch, gradient accumulation) so that per-device x accumulation x
    world_size == total rollouts per step, the same global batch on any number of workers."""
    if total % world_size:
        raise InvalidConfigError(
            "cluster.num_workers",
            f"{world_size} workers cannot share a step of {total} rollouts (grpo.num_prompts_per_step x "
            f"grpo.num_generations_per_prompt) evenly; use a number of workers that divides {total}")
    per_rank = total // world_size
    per_device = max(d for d in range(1, min(micro_batch, per_rank) + 1) if per_rank % d == 0)
    return per_device, per_rank // per_device


class RunState:
    """What the callback and the trainer subclass share about this run."""

    def __init__(self, cfg: TrainerConfig, max_steps: int, identity: dict[str, Any], world_size: int,
                 steps_per_epoch: int) -> None:
        self.cfg = cfg
        self.max_steps = max_steps
        # One pass over the training tasks; max_num_steps may end the run before the first epoch ends.
        self.steps_per_epoch = steps_per_epoch
        self.identity = identity
        self.world_size = world_size
        self.val_metrics: dict[int, dict[str, Any]] = {}
        self.task_ids: list[str] = []
        # The reward TRL computed for each rollout (all reward functions, weighted), in task_ids' order.
        self.rollout_rewards: list[float] = []
        # Tokens training ran on, padding included: (as TRL split the micro batches, as trained).
        self.padded_tokens: tuple[int, int] | None = None
        # Tokens the packed training forwards ran on (policy.packed_sequences), padding included.
        self.packed_tokens = 0
        # Optimizer updates skipped so far because their gradient was not finite.
        self.skipped_updates = 0
        self.gen_seconds = 0.0
        # Inside gen_seconds: the model's own generate calls (one per turn of the
        # tool loop), how many, and how many rollouts they decoded in all.
        self.generate_seconds = 0.0
        self.generate_calls = 0
        self.generate_rollouts = 0
        # A batched generate call decodes until its longest row ends: its decoding steps, the row slots
        # those steps carried (longest x rows), and the tokens the rows really produced.
        self.decode_steps = self.decode_slots = self.decoded_tokens = 0
        self.step_started = time.time()
        self.val_seconds = 0.0
        self.last_num_tokens = 0.0
        self.saved: list[int] = []

    def reset_step_timers(self) -> None:
        self.gen_seconds = self.val_seconds = self.generate_seconds = 0.0
        self.generate_calls = self.generate_rollouts = 0
        self.decode_steps = self.decode_slots = self.decoded_tokens = 0

    def step_share(self) -> dict[str, Any]:
        """This rank's part of the step, gathered to rank 0's metrics line."""
        return {"task_ids": list(self.task_ids), "rewards": list(self.rollout_rewards), "generation": self.gen_seconds,
                "generate": self.generate_seconds, "generate_calls": self.generate_calls,
                "generate_rollouts": self.generate_rollouts}


def build_trainer(cfg: TrainerConfig, *, rank: int = 0, world_size: int = 1) -> tuple[Any, RunState, Path | None]:
    import torch
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from .finite_updates import MAX_CONSECUTIVE_SKIPS, SkipNonFiniteUpdates

    device, dtype = _device_and_dtype(cfg)
    all_train_tasks = load_split(cfg.data.train.data_path, cfg.data.categories)
    val_tasks = validation_subset(load_split(cfg.data.validation.data_path, cfg.data.categories),
                                  cfg.grpo.max_val_samples)
    identity = run_identity(cfg)
    latest = ckpt.latest_complete(cfg.checkpointing.checkpoint_dir)
    resume_view: Path | None = None
    if latest is not None:
        saved_identity = json.loads((latest.path / ckpt.IDENTITY).read_text())
        check_resume(saved_identity, identity, latest.path)
        resume_view = ckpt.hf_resume_view(latest.path, Path(tempfile.mkdtemp(prefix="grpo-resume-")) / "view")

    model, tokenizer = load_policy(cfg.policy.model_name, dtype, cfg.policy.trainable_layers,
                                   cfg.env.workplace_assistant.prefill_tool_call)
    train_tasks = _training_pool(cfg, all_train_tasks, model.to(device), tokenizer, rank, world_size)
    max_steps = total_steps(cfg, len(train_tasks))
    g, lf, p, gen = cfg.grpo, cfg.loss_fn, cfg.policy, cfg.policy.generation
    total = g.num_prompts_per_step * g.num_generations_per_prompt
    per_device, grad_accum = batch_split(total, p.train_micro_batch_size, world_size)
    rollouts = Sampling.rollouts(gen)
    budget = rollout_token_budget(tokenizer, train_tasks, tool_mode=cfg.env.workplace_assistant.tools,
                                  max_new_tokens=gen.max_new_tokens, max_total_tokens=p.max_total_sequence_length)
    if rank == 0:
        print(f"[grpo] rollouts: up to {gen.max_new_tokens} new tokens per turn, {budget} per rollout with "
              f"its tool results (policy.max_total_sequence_length {p.max_total_sequence_length} less the "
              f"longest prompt)", flush=True)
    args = GRPOConfig(
        output_dir=cfg.checkpointing.checkpoint_dir,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=grad_accum,
        num_generations=g.num_generations_per_prompt,
        # TRL's one budget is both the whole rollout's (tool results included) and, unless
        # generation_kwargs says otherwise, each turn's: a whole-rollout budget of one turn's
        # tokens cut most lookups' results off before the write that needs them.
        max_completion_length=budget,
        generation_kwargs={"max_new_tokens": gen.max_new_tokens},
        max_steps=max_steps,
        learning_rate=p.optimizer.lr,
        weight_decay=p.optimizer.weight_decay,
        adam_beta1=p.optimizer.adam_beta1,
        adam_beta2=p.optimizer.adam_beta2,
        adam_epsilon=p.optimizer.adam_eps,
        lr_scheduler_type=p.scheduler.name,
        warmup_steps=p.scheduler.warmup_steps,
        max_grad_norm=p.max_grad_norm,
        beta=lf.reference_policy_kl_penalty,
        epsilon=lf.ratio_clip_min,
        epsilon_high=lf.ratio_clip_max,
        loss_type="dapo" if lf.token_level_loss else "grpo",
        scale_rewards="group" if g.normalize_rewards else "none",
        temperature=rollouts.temperature,
        top_p=rollouts.top_p,
        top_k=rollouts.transformers_top_k,
        max_tool_calling_iterations=cfg.env.workplace_assistant.max_tool_steps,
        seed=g.seed,
        data_seed=g.seed,
        shuffle_dataset=cfg.data.shuffle,
        bf16=dtype == torch.bfloat16,
        activation_checkpointing=p.activation_checkpointing,  # transformers 5 name (the old one warns)
        use_cpu=device == "cpu",
        logging_steps=1,
        report_to=[],  # our MetricsLogger writes TensorBoard / W&B (metrics.report_to)
        save_strategy="steps" if cfg.checkpointing.enabled else "no",
        save_steps=cfg.checkpointing.save_period,
        eval_strategy="no",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    state = RunState(cfg, max_steps, identity, world_size, len(train_tasks) // cfg.grpo.num_prompts_per_step)
    sinks, sink_warnings = report_to(cfg)
    if rank == 0:
        for warning in sink_warnings:
            print(f"warning: {warning}", flush=True)
        print(f"metrics: {Path(cfg.logger.log_dir) / 'metrics.jsonl'}{''.join(f' + {s}' for s in sinks)}", flush=True)
    metrics = MetricsLogger(cfg.logger.log_dir, "tensorboard" in sinks, enabled=rank == 0,
                            wandb=wandb_settings(cfg) if "wandb" in sinks else None)

    tool_mode = cfg.env.workplace_assistant.tools
    shaping = _shaping_key(cfg)
    if tool_mode == "domain":
        sets = sorted({tool_set_for(t.category, tool_mode) for t in train_tasks})
        factory: Any = {name: env_class(name, shaping) for name in sets}
    else:
        factory = env_class(ALL_TOOLS_KEY, shaping)
    rs = g.reward_shaping
    reward_funcs: list[Any] = [_attempted_call_reward(rs.format_credit)] if shaping else []
    if rs.enabled and rs.overlong_buffer_length > 0:
        reward_funcs.append(_overlong_penalty(rs.max_response_length or budget,
                                              rs.overlong_buffer_length, rs.overlong_buffer_penalty))
    reward_funcs.append(_task_solved())
    args.reward_weights = [1.0] * (len(reward_funcs) - 1) + [0.0]

    def validate(step: int) -> dict[str, Any]:
        started = time.time()
        was_training = model.training
        model.eval()
        # Every rank validates its share (task i goes to rank i % world_size) and
        # all ranks gather the episodes, so no rank waits idle in a collective
        # and the result is the same list, in the same order, as on one worker.
        episodes = run_episodes(model, tokenizer, val_tasks[rank::world_size], tool_mode=tool_mode,
                                max_tool_steps=cfg.env.workplace_assistant.max_tool_steps,
                                max_new_tokens=gen.max_new_tokens, sampling=Sampling.validation(gen),
                                batch_size=g.val_batch_size or 8,
                                max_total_tokens=cfg.policy.max_total_sequence_length)
        if world_size > 1:
            from accelerate.utils import gather_object

            shares = dict(gather_object([(rank, episodes)]))
            episodes = [shares[i % world_size][i // world_size] for i in range(len(val_tasks))]
        if was_training:
            model.train()
        summary = summarise(episodes, cfg.logger.num_val_transcripts)
        elapsed = time.time() - started
        state.val_seconds += elapsed
        record = {"validation/accuracy": summary["accuracy"],
                  "validation/avg_length": summary["avg_generated_tokens"],
                  "validation/avg_tool_calls": summary["avg_tool_calls"],
                  "validation/num_samples": summary["num_tasks"],
                  "timing/validation/total_validation_time": elapsed,
                  **{f"validation/accuracy/{k.removeprefix('workplace_assistant_')}": v
                     for k, v in summary["per_category"].items()}}
        state.val_metrics[step] = record
        metrics.log("validation", step, record)
        if rank == 0:
            (Path(cfg.logger.log_dir) / f"val_data_step{step}.json").write_text(json.dumps(summary, indent=2))
            print(f"validation step {step} | accuracy {summary['accuracy']:.4f} | "
                  f"samples {summary['num_tasks']} | {elapsed:.1f}s", flush=True)
        return record

    def hold_at_segment_end(step: int) -> None:
        assert g.segment_handoff_dir is not None
        if rank == 0:
            print(f"[grpo] segment done at step {step}; waiting for the next segment", flush=True)
        decision = wait_for_next_segment(g.segment_handoff_dir, step, timeout_s=g.segment_handoff_timeout_s,
                                         is_main=rank == 0)
        if decision.exit:
            raise SegmentHandoffEnded(step)
        g.stop_after_step = decision.stop_after_step
        if rank == 0:
            print(f"[grpo] continuing to step {decision.stop_after_step} in the same process", flush=True)

    class GrpoCallback(TrainerCallback):
        def on_train_begin(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            if st.global_step == 0 and schedule.validates_at(g, 0, state.max_steps) and val_tasks:
                validate(0)
            state.step_started = time.time()
            state.reset_step_timers()
            # TRL's num_tokens is cumulative and comes back with a resumed state.
            state.last_num_tokens = float(getattr(st, "num_input_tokens_seen", 0) or 0)

        def on_step_begin(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            if g.segment_handoff_dir and g.stop_after_step is not None and st.global_step >= g.stop_after_step:
                # The previous step ended a segment (and saved its checkpoint): wait here,
                # with everything loaded, for the pipeline's next segment.
                hold_at_segment_end(st.global_step)
            state.step_started = time.time()
            state.reset_step_timers()
            state.task_ids = []
            state.rollout_rewards = []
            state.padded_tokens = None
            state.packed_tokens = 0

        def on_step_end(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            step = st.global_step
            failures.PROGRESS["step"] = step
            stop_here = g.stop_after_step is not None and step >= g.stop_after_step
            if schedule.validates_at(g, step, state.max_steps):
                validate(step)
            # HF's own flow already saves every save_period steps (the same rule);
            # this adds the last step and the end of a pipeline segment.
            if schedule.saves_at(cfg.checkpointing, g, step, state.max_steps):
                control.should_save = True
            if stop_here and not g.segment_handoff_dir:
                control.should_training_stop = True

        def on_log(self, args: Any, st: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            if not logs or "loss" not in logs:
                return
            step = st.global_step
            # on_log runs on every rank with the same keys, so this collective is safe.
            shares = [state.step_share()]
            if world_size > 1:
                from accelerate.utils import gather_object

                shares = gather_object(shares)
            by_rank: list[list[str]] | None = [s["task_ids"] for s in shares] if world_size > 1 else None
            task_ids = [t for share in shares for t in share["task_ids"]]
            rollout_rewards = [r for share in shares for r in share["rewards"]]
            elapsed = time.time() - state.step_started - state.val_seconds
            num_tokens = float(logs.get("num_tokens") or 0.0)
            trained = num_tokens - state.last_num_tokens
            state.last_num_tokens = num_tokens
            gen_len = logs.get("completions/mean_length")
            generated = gen_len * total if isinstance(gen_len, (int, float)) else None
            record = {
                "train/reward": logs.get("reward"),
                "train/reward_std": logs.get("reward_std"),
                "train/loss": logs.get("loss"),
                "train/grad_norm": logs.get("grad_norm"),
                "train/lr": logs.get("learning_rate"),
                "train/kl": logs.get("kl"),
                "train/mean_gen_tokens_per_sample": gen_len,
                "train/frac_reward_zero_std": logs.get("frac_reward_zero_std"),
                "train/tool_call_frequency": logs.get("tools/call_frequency"),
                "train/tool_failure_frequency": logs.get("tools/failure_frequency"),
                "train/generated_tokens": generated,
                "train/trained_tokens": trained,
                # this rank's micro batches (rank 0 speaks for the step's shape)
                "train/padded_tokens_ungrouped": state.padded_tokens[0] if state.padded_tokens else None,
                "train/padded_tokens": state.padded_tokens[1] if state.padded_tokens else None,
                "train/packed_tokens": state.packed_tokens or None,
                # updates skipped so far because their gradient was not finite (finite_updates.py)
                "train/skipped_updates": state.skipped_updates,
                "train/task_ids": task_ids,
                # Per rollout, in task_ids' order: lets the report follow one task's reward across the
                # steps that drew it, also when a step draws several tasks.
                "train/rollout_rewards": rollout_rewards if len(rollout_rewards) == len(task_ids) else None,
                "train/task_ids_by_rank": by_rank,
                "timing/train/total_step_time": elapsed,
                "timing/train/generation": state.gen_seconds,
                "timing/train/generate": state.generate_seconds,
                "train/generate_calls": state.generate_calls,
                # this rank's: sequential decoding steps, and the share of the batch's row slots that
                # produced a token (1.0 when every row runs to the end; low when a few long rows hold the rest)
                "train/generate_decode_steps": state.decode_steps,
                "train/generate_slot_use": state.decoded_tokens / state.decode_slots if state.decode_slots else None,
                "timing/train/generation_by_rank": [s["generation"] for s in shares],
                "timing/train/generate_by_rank": [s["generate"] for s in shares],
                "train/generate_calls_by_rank": [s["generate_calls"] for s in shares],
                "train/generate_rollouts_by_rank": [s["generate_rollouts"] for s in shares],
                "timing/train/policy_training": max(0.0, elapsed - state.gen_seconds),
                "performance/generation_tokens_per_sec": (generated / state.gen_seconds
                                                          if generated and state.gen_seconds else None),
                "performance/training_tokens_per_sec": (trained / max(1e-9, elapsed - state.gen_seconds)
                                                        if trained else None),
                "performance/tokens_per_sec": trained / elapsed if trained and elapsed else None,
            }
            for key, value in logs.items():
                if key.startswith("rewards/"):
                    record[f"train/{key}"] = value
            record.update(peak_memory_mb())
            record = {k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
            metrics.log("train", step, record)
            if rank == 0:
                print(step_line(step, state.max_steps, record), flush=True)

        def on_train_end(self, args: Any, st: Any, control: Any, **_: Any) -> None:
            metrics.close()

    def skipped_update(step: int, in_a_row: int) -> None:
        state.skipped_updates += 1
        if rank == 0:
            print(f"[grpo] step {step}: non-finite gradient, update skipped ({in_a_row} in a row; "
                  f"the run stops at {MAX_CONSECUTIVE_SKIPS})", flush=True)

    class WorkplaceGRPOTrainer(CompiledGenerationMixin, LengthGroupedBatchesMixin, CompiledTrainingForwardMixin,
                               PackedSequencesMixin, GRPOTrainer):
        def on_micro_batch_padding(self, as_split: int, as_trained: int) -> None:
            state.padded_tokens = (as_split, as_trained)

        def on_packed_forward(self, padded: int, packed: int) -> None:
            state.packed_tokens += packed

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            started = time.time()
            state.task_ids.extend(str(x["task_id"]) for x in inputs)
            try:
                return super()._generate_and_score_completions(inputs)
            finally:
                state.gen_seconds += time.time() - started

        def _calculate_rewards(self, inputs: list[dict[str, Any]], prompts: Any, completions: Any,
                               completion_ids_list: Any) -> Any:
            per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            # TRL returns every rank's rows; this rank's rollouts (the inputs above) are its slice, and
            # their reward is the weighted sum TRL's advantages start from.
            start = self.accelerator.process_index * len(prompts)
            mine = per_func[start:start + len(prompts)]
            totals = (mine * self.reward_weights.to(mine.device).unsqueeze(0)).nansum(dim=1)
            state.rollout_rewards.extend(round(float(r), 4) for r in totals.tolist())
            return per_func

        def _generate_single_turn(self, prompt_ids: list[list[int]], *args: Any, **kwargs: Any) -> Any:
            # One batched generate call: the first turn of every rollout, or one
            # turn of the tool loop for the rollouts still calling tools.
            started = time.time()
            try:
                result = super()._generate_single_turn(prompt_ids, *args, **kwargs)
            finally:
                state.generate_seconds += time.time() - started
                state.generate_calls += 1
                state.generate_rollouts += len(prompt_ids)
            lengths = [len(ids) for ids in result[0]]  # (completion_ids, logprobs)
            longest = max(lengths, default=0)
            state.decode_steps += longest
            state.decode_slots += longest * len(lengths)
            state.decoded_tokens += sum(lengths)
            return result

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            save_checkpoint(self, state, tokenizer)

    trainer = WorkplaceGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=_dataset(train_tasks, tool_mode),
        processing_class=tokenizer,
        environment_factory=factory,
        callbacks=[GrpoCallback(), SkipNonFiniteUpdates(on_skip=skipped_update)],
    )
    trainer.length_grouped_batches = p.length_grouped_micro_batches
    trainer.packed_sequences = p.packed_sequences
    trainer.packed_varlen_attention = p.packed_varlen_attention
    trainer.compiled_training_forward = p.compiled_training_forward
    # Our callback prints one readable line per step; HF's printer would dump
    # every raw log dict on top of it.
    trainer.remove_callback(PrinterCallback)
    if p.packed_varlen_attention and rank == 0:
        where = "flash attention" if device == "cuda" else "SDPA one row at a time (no flash kernel off CUDA)"
        print(f"[grpo] packed training forwards attend within each row through variable-length {where} "
              "(policy.packed_varlen_attention)", flush=True)
    if compiled_generation_wanted(gen.compiled_static_cache, device) \
            and trainer.enable_compiled_generation(gen.grouped_decode_attention) and rank == 0:
        print("[grpo] rollouts decode with a static KV cache and a compiled decoding step "
              "(policy.generation.compiled_static_cache)", flush=True)
    seen = trainer.accelerator.num_processes
    if seen != world_size:
        raise RayFailureError(
            f"Ray Train started {world_size} workers but accelerate sees a world of {seen} processes "
            "(the torch process group was not picked up)")
    if rank == 0:
        print(f"world size {seen} ({trainer.accelerator.distributed_type.value}, device {trainer.args.device}): "
              f"{per_device} rollouts per device x {grad_accum} accumulation steps x {seen} workers = "
              f"{total} rollouts per step", flush=True)
        if per_device != p.train_micro_batch_size:
            print(f"[grpo] per-device batch {per_device} instead of policy.train_micro_batch_size="
                  f"{p.train_micro_batch_size}: the largest batch up to it that divides the {total // seen} "
                  "rollouts each worker trains per step", flush=True)
    return trainer, state, resume_view


class SegmentHandoffEnded(Exception):
    """Nobody continued the paused trainer: it leaves at a step that has its checkpoint."""

    def __init__(self, step: int) -> None:
        super().__init__(f"no next segment after step {step}")
        self.step = step


def save_checkpoint(trainer: Any, state: RunState, tokenizer: Any) -> None:
    cfg = state.cfg
    step = trainer.state.global_step
    is_main = trainer.args.should_save
    distributed = trainer.args.world_size > 1
    tmp = (ckpt.begin_save(cfg.checkpointing.checkpoint_dir, step) if is_main
           else ckpt.tmp_save_dir(cfg.checkpointing.checkpoint_dir, step))
    if is_main:
        print(f"Saving checkpoint for step {step}...", flush=True)
        assert tmp is not None
        trainer.save_model(str(tmp / ckpt.WEIGHTS), _internal_call=True)
        tokenizer.save_pretrained(str(tmp / ckpt.TOKENIZER))
        # save_model also drops tokenizer files next to the weights; keep
        # weights/ to weights only, as NeMo RL's layout has them apart.
        for extra in (tmp / ckpt.WEIGHTS).iterdir():
            if extra.name.startswith(("tokenizer", "chat_template", "special_tokens")):
                extra.unlink()
    # Several workers: rank 0 creates tmp_step_N, then every rank adds its own
    # rng_state_<rank>.pth (rank 0 also the optimizer and scheduler), and rank 0
    # renames the directory only after all of them are done. Every rank passes
    # both barriers, so nobody waits on a collective the others skip.
    if distributed:
        trainer.accelerator.wait_for_everyone()
    if cfg.checkpointing.save_optimizer:
        opt_dir = tmp / ckpt.OPTIMIZER
        opt_dir.mkdir(parents=True, exist_ok=True)
        trainer._save_optimizer_and_scheduler(str(opt_dir))
        trainer._save_rng_state(str(opt_dir))
    if distributed:
        trainer.accelerator.wait_for_everyone()
    if not is_main:
        return
    trainer.state.save_to_json(str(tmp / "trainer_state.json"))
    steps_per_epoch = max(1, state.steps_per_epoch)
    info: dict[str, Any] = {
        "total_steps": step,
        "current_step": step % steps_per_epoch if step % steps_per_epoch else steps_per_epoch,
        "current_epoch": (step - 1) // steps_per_epoch if step else 0,
        "consumed_samples": step * cfg.grpo.num_prompts_per_step,
        "max_steps": state.max_steps,
        "world_size": state.world_size,
        "saved_at": time.time(),
    }
    val = state.val_metrics.get(step)
    if val is not None:
        for key, record_key in ckpt.VAL_METRICS.items():
            info[key] = val[record_key]
        info["val_reward"] = val["validation/accuracy"]
    ckpt.write_json(tmp / ckpt.TRAINING_INFO, info)
    ckpt.write_json(tmp / ckpt.IDENTITY, state.identity)
    (tmp / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    final = ckpt.finish_save(tmp)
    state.saved.append(step)
    deleted = ckpt.apply_retention(cfg.checkpointing.checkpoint_dir, cfg.checkpointing.metric_name,
                                   cfg.checkpointing.higher_is_better, cfg.checkpointing.keep_top_k)
    for old in deleted:
        print(f"Removing checkpoint step_{old} (outside top-{cfg.checkpointing.keep_top_k} "
              f"by {cfg.checkpointing.metric_name})", flush=True)
    print(f"Saved checkpoint {final}", flush=True)
    # Only now is step_N final on disk and retention done: what the pipeline may rely on.
    events.checkpoint_saved(cfg.logger.log_dir, step, final, deleted)


def train(cfg: TrainerConfig, *, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    random.seed(cfg.grpo.seed)
    trainer, state, resume_view = build_trainer(cfg, rank=rank, world_size=world_size)
    if resume_view is not None and rank == 0:
        print(f"Resuming from {ckpt.latest_complete(cfg.checkpointing.checkpoint_dir).path}", flush=True)
    if resume_view is not None:
        done = json.loads((resume_view / "trainer_state.json").read_text()).get("global_step", 0)
        if done >= state.max_steps or (cfg.grpo.stop_after_step is not None and done >= cfg.grpo.stop_after_step):
            if rank == 0:
                print(f"Nothing to do: checkpoint at step {done} already reaches the requested step", flush=True)
            return {"global_step": done, "saved": [], "world_size": world_size}
    if rank == 0:
        # The pipeline measures recovery time up to here (model loaded, training under way):
        # the `running` event, and the line for people reading the log.
        start = trainer.state.global_step
        if resume_view is not None:
            start = json.loads((resume_view / "trainer_state.json").read_text()).get("global_step", 0)
        print(f"[grpo] training running from step {start}", flush=True)
        events.running(cfg.logger.log_dir, start)
    try:
        trainer.train(resume_from_checkpoint=str(resume_view) if resume_view else None)
    except SegmentHandoffEnded as ended:
        if rank == 0:
            print(f"[grpo] exiting at step {ended.step} (its checkpoint is complete): {ended}", flush=True)
        trainer.callback_handler.on_train_end(trainer.args, trainer.state, trainer.control)
    return {"global_step": trainer.state.global_step, "saved": state.saved, "world_size": world_size}
