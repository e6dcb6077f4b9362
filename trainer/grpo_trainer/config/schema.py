"""Configuration dataclasses, one per NeMo RL section.

Field names follow NeMo RL's YAML (`grpo.num_prompts_per_step`,
`checkpointing.save_period`, ...) so a user can read one recipe and know the
other. Keys the built-in trainer adds are marked "(built-in)".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RewardShapingConfig:
    # (built-in) Partial credit for well-formed calls and the right tool names,
    # so a tiny model gets a learning signal before it ever solves a task.
    # validation/accuracy always stays the binary outcome reward.
    enabled: bool = False
    format_credit: float = 0.1
    tool_name_credit: float = 0.3
    # DAPO's soft overlong punishment, as in NeMo RL's grpo.reward_shaping:
    # completions longer than max_response_length - overlong_buffer_length
    # lose up to overlong_buffer_penalty, linearly. 0 disables it.
    overlong_buffer_length: int = 0
    overlong_buffer_penalty: float = 1.0
    # null: the rollout's whole token budget (rollout.episodes.rollout_token_budget).
    max_response_length: int | None = None


@dataclass
class GrpoConfig:
    num_prompts_per_step: int = 2
    num_generations_per_prompt: int = 4
    max_num_epochs: int = 1
    max_num_steps: int = 12
    # (built-in) Stop after this global step (saving a checkpoint there) and exit 0;
    # the pipeline uses it to run training in durable segments.
    stop_after_step: int | None = None
    # (built-in, pipeline) With a directory here the trainer does not exit at
    # stop_after_step: it waits there for the next segment (training/handoff.py),
    # and exits 0 if none comes within segment_handoff_timeout_s.
    segment_handoff_dir: str | None = None
    segment_handoff_timeout_s: float = 600.0
    normalize_rewards: bool = True
    val_period: int = 6
    val_at_start: bool = True
    val_at_end: bool = True
    max_val_samples: int | None = None
    # Validation tasks generated together (NeMo RL's key; null = 8).
    val_batch_size: int | None = None
    seed: int = 42
    reward_shaping: RewardShapingConfig = field(default_factory=RewardShapingConfig)


@dataclass
class LossFnConfig:
    reference_policy_kl_penalty: float = 0.0
    ratio_clip_min: float = 0.2
    ratio_clip_max: float = 0.2
    token_level_loss: bool = True


@dataclass
class CheckpointingConfig:
    enabled: bool = True
    checkpoint_dir: str = "results/grpo"
    metric_name: str = "val:accuracy"
    higher_is_better: bool = True
    keep_top_k: int = 3
    save_period: int = 6
    save_optimizer: bool = True


@dataclass
class TokenizerConfig:
    name: str | None = None


@dataclass
class OptimizerConfig:
    lr: float = 5.0e-6
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1.0e-8


@dataclass
class SchedulerConfig:
    name: str = "constant"
    warmup_steps: int = 0


@dataclass
class GenerationConfig:
    # Tokens one assistant turn may generate, in training and evaluation alike. A whole
    # rollout (turns and tool results) is bounded by policy.max_total_sequence_length.
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    # 0 means greedy decoding for validation (stable numbers on tiny models).
    val_temperature: float = 0.0
    # (built-in) Rollouts decoded with a static KV cache and a compiled decoding step
    # (training/compiled_generation.py); null = on when the policy runs on CUDA.
    compiled_static_cache: bool | None = None
    # (built-in) With the compiled static cache, decoding attention reads the cached key/value heads
    # as they are grouped instead of repeating them per query head (training/grouped_decode_attention.py).
    grouped_decode_attention: bool = True


@dataclass
class PolicyConfig:
    model_name: str = ""
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train_micro_batch_size: int = 4
    max_total_sequence_length: int = 2048
    precision: str = "auto"  # auto | float32 | bfloat16
    max_grad_norm: float = 1.0
    # (built-in) Train only the top N transformer layers (None = all). Lets a
    # 2-core CPU afford real GRPO updates of a 135M model.
    trainable_layers: int | None = None
    # Recompute activations in the backward pass instead of keeping them (TRL's default).
    # Saves memory for large models; a small model on a GPU trains faster without it.
    activation_checkpointing: bool = True
    # (built-in) Sort a step's rollouts by length into its micro batches and cut each to its own
    # longest row (training/length_grouping.py): the same gradient over fewer padded tokens.
    # Off: on an H200 it made training slower and both real runs with it hit a non-finite
    # gradient (docs/benchmarks.md, Change 4); kept for study.
    length_grouped_micro_batches: bool = False
    # (built-in) Run each training forward on the micro batch's rows packed end to end, each row
    # restarting its positions, instead of on TRL's padded rectangle (training/packed_sequences.py):
    # the same log-probs and gradient over fewer tokens. Off here (alone it saves 2-3 % of a real GPU
    # step, docs/benchmarks.md, Change 5); configs/builtin-gpu.yaml turns it on with
    # packed_varlen_attention.
    packed_sequences: bool = False
    # (built-in) With packed_sequences, attend within each packed row through torch's variable-length
    # flash attention (training/varlen_packed_attention.py) instead of SDPA over each packed sequence's
    # full square under a block mask: the same log-probs, only the rows' own causal triangles computed,
    # and the micro batch runs as one sequence with no padding. On an H100, packed training 2.0x faster
    # with it (docs/benchmarks.md, Changes 8 and 9); on in the GPU config. Off here: without CUDA there
    # is no flash kernel and the same attention runs row by row.
    packed_varlen_attention: bool = False
    # (built-in) Score and train through a torch.compile'd view of the policy (dynamic shapes;
    # training/compiled_training.py): fuses the small kernels around the matrix products. Off: on an
    # H100, with packing and varlen attention, training took 0.34 s a step instead of 0.60, after
    # about 190 s of compiling per trainer process, so only runs of several hundred steps gain
    # (docs/benchmarks.md, Changes 6 and 8).
    # Generation has its own switch (generation.compiled_static_cache).
    compiled_training_forward: bool = False
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)


@dataclass
class DataSplitConfig:
    data_path: str = ""


@dataclass
class DataConfig:
    train: DataSplitConfig = field(default_factory=DataSplitConfig)
    validation: DataSplitConfig = field(default_factory=DataSplitConfig)
    shuffle: bool = True
    # (built-in) Keep only these task categories (None = all).
    categories: list[str] | None = None
    # (built-in) GRPO draws its steps from this many training tasks (a sample seeded by
    # grpo.seed; None = all). A short run then visits each task more than once, so its
    # reward can be compared on the same tasks early and late, not across easier and harder ones.
    max_train_tasks: int | None = None
    # (built-in) How that pool is chosen: "random" (the seeded sample) or "pass_rate": candidates, in
    # seeded order, each get grpo.num_generations_per_prompt sampled rollouts from the starting policy,
    # and the pool keeps those it solves sometimes but not always (the only groups with a gradient),
    # probing at most pool_probe_tasks candidates (training/pool_selection.py); or "headroom": of those,
    # the tasks greedy decoding fails and a sampled rollout solves (greedy first, grpo.val_batch_size tasks
    # a batch; only the tasks greedy fails are sampled). No pool (null), no probing.
    pool_selection: str = "random"
    pool_probe_tasks: int = 24


@dataclass
class WorkplaceEnvConfig:
    max_tool_steps: int = 6
    # "domain": each task sees its domain's tools plus the company directory;
    # "all": every task sees all 27 tools, as in NeMo Gym.
    tools: str = "all"
    # (built-in) Start each task's first assistant turn with `<tool_call>{"name": "`
    # so a small model only has to pick the tool and arguments (see docs/trainer.md).
    prefill_tool_call: bool = False


@dataclass
class EnvConfig:
    workplace_assistant: WorkplaceEnvConfig = field(default_factory=WorkplaceEnvConfig)


@dataclass
class WandbConfig:
    project: str = "grpo-pipeline"
    # Run name; None: W&B's own.
    name: str | None = None


@dataclass
class LoggerConfig:
    log_dir: str = "logs/grpo"
    # TensorBoard events under <log_dir>/tensorboard (NeMo RL's tag names).
    tensorboard_enabled: bool = True
    # W&B, only with WANDB_API_KEY (or WANDB_MODE=offline) in the environment and the
    # wandb package installed (it is not in the locked environment); otherwise a warning.
    wandb_enabled: bool = False
    wandb: WandbConfig = field(default_factory=WandbConfig)
    num_val_transcripts: int = 3


@dataclass
class ClusterConfig:
    gpus_per_node: int = 0
    num_nodes: int = 1
    # (built-in) Ray Train workers; None = one per GPU, or one on a CPU node.
    num_workers: int | None = None


@dataclass
class WarmStartConfig:
    """(built-in) Supervised fine-tuning on tool-calling traces before GRPO
    (`python -m grpo_trainer warm-start`, training/warm_start.py): the base
    model almost never completes a task, so GRPO alone has no signal.

    The defaults are the CPU config's (configs/builtin-cpu.yaml), sized for a
    2-core CPU and SmolLM2-135M: the top 8 of 30 layers, one pass over at most
    200 traces of at most 1,024 tokens, about 9 minutes (docs/trainer.md).
    """

    enabled: bool = False
    # Passes over the traces (fractions allowed: 1.5 = one and a half).
    epochs: float = 1.0
    # Use at most this many traces (a sample seeded by grpo.seed; null = all that fit max_length).
    max_examples: int | None = 128
    lr: float = 2.0e-4
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    # Tokens of one rendered trace; longer traces are dropped (and counted), never truncated.
    max_length: int = 1024
    # Train only the top N decoder layers (null = all layers; not inherited from policy.trainable_layers,
    # which budgets GRPO steps, not one supervised pass).
    trainable_layers: int | None = 8
    # Optimizer steps between Trainer checkpoints (a killed warm start resumes from the newest).
    save_steps: int = 5


@dataclass
class TrainerConfig:
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    loss_fn: LossFnConfig = field(default_factory=LossFnConfig)
    checkpointing: CheckpointingConfig = field(default_factory=CheckpointingConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
