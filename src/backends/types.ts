/**
 * The backend adapter interface: everything the pipeline needs to know about one trainer
 * (environment, model, launch command + env, progress/metrics reader, failure report reader).
 * Adapters are pure: they describe commands; activities run them.
 */
import type { PipelineConfig } from '../config/schema.js';
import type { DataInfo, EnvInfo, Metrics, ModelInfo, RayInfo, RunPaths } from '../common/types.js';
import type { BackendTraits } from './traits.js';

export interface CommandSpec {
  /** Human label shown by `grpo plan`. */
  label: string;
  argv: string[];
  cwd: string;
  /** Non-secret environment additions. */
  env: Record<string, string>;
  /** Names of variables passed through from the worker's environment when set (secrets; shown redacted). */
  passEnv: string[];
  /** Shell-level notes for the plan (e.g. "optional force-cleanup"). */
  note?: string;
}

export interface EnvSpec {
  kind: 'venv' | 'uv-project';
  dir: string;
  python: string;
  /** Files whose content determines the fingerprint. */
  lockFiles: string[];
  /** Extra fingerprint input (interpreter, backend name, ...). */
  fingerprintExtra: string;
  /** Commands that build the environment into `dir` (run in order after `dir` is cleared). */
  build: CommandSpec[];
}

export interface BackendContext {
  config: PipelineConfig;
  repoRoot: string;
  stateDir: string;
  paths: RunPaths;
  env?: EnvInfo;
  model?: ModelInfo;
  data?: DataInfo;
  ray?: RayInfo | null;
  /** Run with HF_HUB_OFFLINE=1 everywhere (set by the rate-limit policy once the model is cached). */
  hubOffline?: boolean;
  /** Trainer-section overrides made by recovery policies (e.g. policy.train_micro_batch_size=2), appended to launches. */
  trainerOverrides?: string[];
}

export type MetricRecord =
  /** taskIds: the task of each rollout of the step (train/task_ids), where the trainer logs it;
   * rolloutRewards: each rollout's reward in the same order (train/rollout_rewards). */
  | { kind: 'train'; step: number; metrics: Metrics; taskIds?: string[]; rolloutRewards?: number[] }
  | { kind: 'validation'; step: number; metrics: Metrics };

export interface FailureReport {
  type: 'OutOfMemory' | 'RayFailure' | 'RateLimited' | 'InvalidConfig' | 'InvalidData' | 'ModelLoad' | 'Unknown' | string;
  message: string;
  step: number | null;
  /** Seconds the server asked us to wait (HTTP Retry-After), for RateLimited. */
  retryAfterSeconds?: number | null;
}

export interface SegmentHandoff {
  dir: string;
  timeoutS: number;
}

export interface BackendAdapter extends BackendTraits {
  readonly name: 'builtin' | 'nemo_rl';
  /** The pipeline config section that belongs to this backend (filled with defaults when absent). */
  readonly ownSection: 'nemo_rl' | null;
  /** Config rules of this backend beyond the schema (errors refuse the config). */
  lint(config: PipelineConfig): { errors: string[]; warnings: string[] };
  /** What to tell the user when a file the environment is built from is missing. */
  missingEnvironmentMessage(file: string): string;
  /** The plan's lines for the train stage (`grpo plan`), given its first launch. */
  planTraining(ctx: BackendContext, launch: CommandSpec, segmentEnds: number[], handoff?: SegmentHandoff): string[];
  environment(ctx: BackendContext): EnvSpec;
  /** Where the model lives / how it is fetched (null command: nothing to fetch); `ref`: what the trainer is given instead of `dir` (a Hub id). */
  model(ctx: BackendContext): { dir: string; command: CommandSpec | null; ref?: string };
  data(ctx: BackendContext): { dir: string; command: CommandSpec | null; train: string; validation: string; manifest: string };
  /** For data the backend does not prepare: what is wrong with the files (null: fine). */
  checkData?(d: { train: string; validation: string }): string | null;
  /** Checks that need the worker's environment (secrets present, the checkout usable), before anything runs. */
  preflight?(ctx: BackendContext, workerEnv: NodeJS.ProcessEnv): { errors: string[]; warnings: string[] };
  /** Where the launch runs (default local). */
  launcher?(config: PipelineConfig): 'local' | 'slurm';
  /** Slurm: where ray.sub writes its per-job logs, and the resubmission after a failed job. */
  slurmLogBase?(ctx: BackendContext): string;
  resubmit?(ctx: BackendContext): CommandSpec;
  /** Progress from the trainer's stdout: a step reached, the run's real length, training under way. */
  parseDriverLine?(line: string): { step?: number; total?: number; running?: boolean } | null;
  /** A command that refreshes metricsFile from the trainer's own logs (e.g. TensorBoard), run now and then. */
  refreshMetrics?(ctx: BackendContext, python: string): CommandSpec;
  /**
   * Training launch up to (and including a checkpoint at) global step `stopAfterStep`. With
   * `handoff` (backends whose `segmentHandoff` is true) the trainer then waits for the next segment
   * instead of exiting (src/activities/handoff.ts).
   */
  launch(ctx: BackendContext, stopAfterStep: number, handoff?: SegmentHandoff): CommandSpec;
  /** Can a trainer of this backend pause between segments and go on in the same process? */
  readonly segmentHandoff: boolean;
  evaluate(ctx: BackendContext, modelDir: string, outPath: string): CommandSpec | null;
  /**
   * Backends with supportsWarmStart: verified traces of the training split, then supervised
   * fine-tuning on them from `baseModel` into `dir` (the trainer reuses a warm start of the same inputs).
   */
  warmStartCommands?(ctx: BackendContext, baseModel: string, dir: string): { traces: CommandSpec; train: CommandSpec; tracesFile: string; modelDir: string; resultFile: string; failureFile: string; metricsFile: string };
  checkConfig(ctx: BackendContext): CommandSpec | null;
  /** Optional force-cleanup commands shown by `grpo plan` (never run automatically). */
  preClean(ctx: BackendContext): CommandSpec[];
  metricsFile(paths: RunPaths): string;
  parseMetricsLine(line: string): MetricRecord | null;
  failureFile(paths: RunPaths): string;
  parseFailure(text: string): FailureReport | null;
}
