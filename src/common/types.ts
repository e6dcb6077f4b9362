/**
 * Shapes shared by the workflow, activities, worker and CLI. Pure types and constants only:
 * this module is bundled into the workflow sandbox.
 */
import type { PipelineConfig } from '../config/schema.js';

/** Task queue of workflows and light activities (documented for `temporal workflow start`). */
export const TASK_QUEUE = 'grpo-pipeline';
/** Task queue of heavy activities (training, evaluation) = `<workflow task queue>-train`; one at a time per worker by default. */
export const trainQueueFor = (taskQueue: string) => `${taskQueue}-train`;
export const TRAIN_TASK_QUEUE = trainQueueFor(TASK_QUEUE);
export const WORKFLOW_TYPE = 'trainingRun';
/** Default of run.continue_as_new_after_events: far below Temporal's warning (10,240 events), with room for a segment. */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 4000;
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/**
 * The run id of a run started without one: its workflow id, each character outside RUN_ID_PATTERN's
 * set replaced by '-'. A schedule's fires are `<name>-2026-12-02T10:30:00Z`, so each gets its own
 * valid run id (`<name>-2026-12-02T10-30-00Z`) and run directory.
 */
export const runIdOfWorkflow = (workflowId: string): string => workflowId.replace(/[^A-Za-z0-9._-]/g, '-');

/** Input of the `trainingRun` workflow; exactly one of configPath / config. */
export interface TrainingRunInput {
  /** Path of a YAML config, relative to the worker's working directory (or absolute). */
  configPath?: string;
  /** Inline config object (same shape as the YAML files). */
  config?: unknown;
  /** `a.b.c=value` overrides applied on top of the config. */
  set?: string[];
  /** Run id (defaults to the workflow id). */
  runId?: string;
  /** Force a rebuild of the trainer environment. */
  force?: boolean;
  /** Label of where an inline config came from (shown in status and summary). */
  source?: string;
  /** `grpo resume`: the closed execution this one continues (same run id, its checkpoints). */
  resume?: ResumeOf;
  /** Internal: what the previous execution hands over at continue-as-new (src/workflows/carry.ts). */
  carry?: unknown;
}

export interface ResumeOf {
  /** Temporal run id of the execution being resumed. */
  executionRunId: string;
  /** How it ended (FAILED, CANCELLED, TERMINATED, TIMED_OUT). */
  endedAs: string;
}

export interface RunPaths {
  stateDir: string;
  runDir: string;
  checkpointDir: string;
  logDir: string;
  evalDir: string;
  trainerConfig: string;
  summaryJson: string;
  summaryText: string;
}

export interface ResolvedRun {
  runId: string;
  config: PipelineConfig;
  warnings: string[];
  paths: RunPaths;
  configSource: string;
  /** Set by the rate-limit policy once the model is cached: every later stage runs with HF_HUB_OFFLINE=1. */
  hubOffline?: boolean;
  /** Trainer-section overrides made by recovery policies, in order (later wins). */
  trainerOverrides?: string[];
}

export type StageName =
  | 'validate'
  | 'prepareEnvironment'
  | 'prepareData'
  | 'fetchModel'
  | 'startRay'
  | 'baselineEval'
  | 'warmStart'
  | 'train'
  | 'finalEval'
  | 'promote'
  | 'summary'
  | 'cleanup';

export const STAGES: StageName[] = [
  'validate',
  'prepareEnvironment',
  'prepareData',
  'fetchModel',
  'startRay',
  'baselineEval',
  'warmStart',
  'train',
  'finalEval',
  'promote',
  'summary',
  'cleanup',
];

export type StageState = 'pending' | 'running' | 'done' | 'skipped' | 'failed' | 'cancelled';
export type RunState = 'running' | 'completed' | 'failed' | 'cancelled';

export interface EnvInfo {
  envDir: string;
  python: string;
  fingerprint: string;
  rebuilt: boolean;
  /** NeMo RL: the next launch must set NRL_FORCE_REBUILD_VENVS=true (first run after a rebuild). */
  nrlForceRebuildVenvs: boolean;
}

export interface DataInfo {
  dataDir: string;
  train: string;
  validation: string;
  manifest: string;
}

export interface ModelInfo {
  modelDir: string;
  fingerprint: string;
  /** What training starts from (config init_from): absent in histories from before promotion. */
  initFrom?: 'base' | 'promoted';
  /** With initFrom 'promoted': the promoted model it is (line, run, step). */
  promoted?: { line: string; runId: string; step: number } | null;
  /** Something the workflow shows (e.g. init_from: promoted but nothing is promoted yet: the base model is used). */
  warning?: string;
}

/** One model's validation score in a promotion decision. */
export interface PromotionScore {
  accuracy: number;
  numTasks: number;
  /** Wilson 95% interval of the accuracy. */
  interval: [number, number] | null;
  /** BFCL overall accuracy, when evaluated. */
  bfcl?: number | null;
}

/** The promoteModel stage's result (also the history record's core, src/promotion/registry.ts). */
export interface PromotionDecision {
  promoted: boolean;
  /** Exactly why, with the numbers. */
  reason: string;
  line: string;
  runId: string;
  step: number;
  /** What the candidate was compared with: the line's promoted model, the run's base model, or nothing (first model of the line). */
  against: 'incumbent' | 'baseline' | 'none';
  candidate: PromotionScore | null;
  /** The compared model's score (incumbent or base model); null when there was none. */
  incumbent: (PromotionScore & { runId: string | null; step: number | null }) | null;
  /** Mean paired per-task difference candidate − compared model, and its 95% interval. */
  delta: number | null;
  interval: [number, number] | null;
  pairedTasks: number | null;
  margin: number;
  /** BFCL overall change candidate − compared model (unpaired 95% interval), when both were evaluated. */
  bfclDelta?: { delta: number; interval: [number, number] } | null;
  /** The exported model that is now current (null: not promoted). */
  modelDir: string | null;
  time: string;
}

/** The warmStart stage's result: the warmed model GRPO starts from. */
export interface WarmStartInfo {
  /** The warmed model (an HF model dir), used as the GRPO policy's starting point. */
  model: ModelInfo;
  /** <state>/warm/<key>: traces.jsonl, model/, checkpoints/, warm_start.json. */
  dir: string;
  /** True when a warm start made from the same inputs was already there. */
  reused: boolean;
  traces: number;
  /** Training tasks the traces were built from. */
  tasks: number;
  steps: number;
  seconds: number;
  finalLoss: number | null;
}

export interface RayInfo {
  address: string;
  /** Process group of `ray start` (0 for a cluster the pipeline did not start). */
  pid: number;
  tempDir: string;
  numCpus: number;
  numGpus: number;
  /** The head's token file (a path; the token itself never leaves it). Absent in histories before token auth. */
  authTokenPath?: string | null;
  /** A cluster the user gave (`ray.address`): never started, restarted or stopped by the pipeline. */
  external?: boolean;
  /** Whether the cluster refuses clients without a token (checked for a user's cluster). */
  authenticated?: boolean;
}

export interface EvalResult {
  accuracy: number;
  perCategory: Record<string, number>;
  numTasks: number;
  outPath: string;
  model: string;
}

export interface CheckpointInfo {
  step: number;
  dir: string;
  metric: number | null;
  /** When the trainer finished writing it (epoch ms), when known. */
  savedAtMs?: number;
}

export interface CheckpointBook {
  retained: CheckpointInfo[];
  removed: number[];
  best: CheckpointInfo | null;
  newest: CheckpointInfo | null;
  /** tmp_step_N dirs seen (in progress; never counted or deleted). */
  inProgress: string[];
  /** What breaks the retention promise (checked, never repaired: the trainer owns retention). */
  violations?: string[];
}

export interface FailureInfo {
  stage: StageName;
  attempt: number;
  type: string;
  message: string;
  step?: number | null;
  time: string;
}

export type Metrics = Record<string, number>;

/**
 * One entry of a run's lost-work ledger: a failure, what was done about it and what it cost.
 * stepsLost = the step the run had reached minus the newest complete checkpoint (work redone);
 * timeLostSeconds = wall time of that discarded work; recoverySeconds = fault to training running
 * again (the resumed trainer reports it has loaded the model and continues).
 */
export interface LedgerEntry {
  time: string;
  stage: StageName;
  attempt: number;
  type: string;
  /** Classifier row that matched. */
  rule: string;
  action: string;
  configChanges: string[];
  stepAtFailure: number | null;
  resumedFromStep: number | null;
  stepsLost: number | null;
  timeLostSeconds: number | null;
  recoverySeconds: number | null;
  /** Of the recovery: launch of the new trainer to training under way (imports, Ray Train workers, model load). */
  trainerStartSeconds: number | null;
  message: string;
}

/** Details of a classified failure thrown by a heavy activity (ApplicationFailure details[0]). */
export interface FailureDetails {
  rule: string;
  step: number | null;
  exitCode: number | null;
  signal: string | null;
  /** Epoch ms when the failure was seen. */
  failedAtMs: number;
  retryAfterSeconds: number | null;
  /** Newest complete checkpoint at failure time. */
  checkpointStep: number | null;
  /** Epoch ms since which the lost work was done: that checkpoint's save or the trainer's start, whichever is later. */
  workSinceMs: number | null;
  /** The model is complete in the state dir's cache (a rate-limited retry can go offline). */
  modelCached: boolean;
}

export interface SegmentResult {
  step: number;
  /** True when the trainer stopped before the requested step (data exhausted / max steps reached). */
  finished: boolean;
  latestTrain: Metrics;
  latestValidation: Metrics;
  attempt: number;
}

/** Sent by activities to their workflow (signal `progress`). */
export interface ProgressUpdate {
  stage: StageName;
  attempt: number;
  step?: number;
  train?: Metrics;
  validation?: Metrics;
  failure?: Omit<FailureInfo, 'stage' | 'attempt' | 'time'>;
  /** A retried attempt found it replaced a lost one (worker crash / host loss): ledger it. */
  lostAttempt?: { failedAtMs: number; stepAtFailure: number | null; checkpointStep: number | null; workSinceMs: number | null; action: string };
  /** The trainer of this attempt is running (model loaded, training resumed) at epoch ms `atMs`, from `fromStep`. */
  running?: { atMs: number; fromStep: number; launchedAtMs: number };
  /** The run's real length, as the trainer says it (NeMo RL's `Step N/M`: bounded by epochs and data). */
  totalSteps?: number;
  /** What the stage is doing now (e.g. the warm start's step and loss), shown as its detail. */
  stageDetail?: string;
}

export interface StageStatus {
  name: StageName;
  state: StageState;
  startedAt?: string;
  endedAt?: string;
  detail?: string;
}

export interface RunStatus {
  runId: string;
  state: RunState;
  stage: StageName;
  backend: string;
  stages: StageStatus[];
  step: number;
  totalSteps: number;
  latestTrain: Metrics;
  latestValidation: Metrics;
  checkpoints: CheckpointInfo[];
  best: CheckpointInfo | null;
  metricName: string;
  baseline: EvalResult | null;
  /** After the supervised warm start (null: none, or not evaluated). */
  warm?: EvalResult | null;
  warmStart?: WarmStartInfo | null;
  final: EvalResult | null;
  attempts: Partial<Record<StageName, number>>;
  failures: FailureInfo[];
  /** Failures with the action taken and the work they cost (see LedgerEntry). */
  ledger: LedgerEntry[];
  /** Trainer config changes made by recovery policies (e.g. a halved micro batch after an OOM). */
  configChanges: string[];
  warnings: string[];
  /** The promote stage's decision (null: promotion off, or not reached). */
  promotion?: PromotionDecision | null;
  startedAt: string;
  updatedAt: string;
  elapsedSeconds: number;
  runDir: string | null;
  summaryPath: string | null;
}

export interface Summary {
  runId: string;
  state: RunState;
  backend: string;
  configSource: string;
  steps: { completed: number; total: number };
  baselineAccuracy: number | null;
  /** After the warm start, before GRPO (null: the run had none). */
  warmAccuracy?: number | null;
  finalAccuracy: number | null;
  finalModel: string | null;
  /** Validation tasks each evaluation scored (the accuracy intervals need them). */
  validationTasks?: { baseline: number | null; warm: number | null; final: number | null };
  warmStart?: WarmStartInfo | null;
  checkpoints: CheckpointInfo[];
  best: CheckpointInfo | null;
  metricName: string;
  latestTrain: Metrics;
  latestValidation: Metrics;
  failures: FailureInfo[];
  ledger: LedgerEntry[];
  recoveries: number;
  configChanges: string[];
  warnings: string[];
  /** The promote stage's decision (null: promotion off, or not reached). */
  promotion?: PromotionDecision | null;
  startedAt: string;
  finishedAt: string;
  elapsedSeconds: number;
  runDir: string;
}
