/**
 * Workflow-side helpers of failure recovery: read a failed activity, know the OOM knobs of the
 * current config, write ledger entries. Deterministic code only (bundled into the workflow).
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import type { PipelineConfig } from '../config/schema.js';
import type { FailureDetails, LedgerEntry } from '../common/types.js';
import type { OomKnobs } from '../failures/policy.js';
import { traitsOf } from '../backends/traits.js';

export interface SeenFailure {
  type: string;
  message: string;
  details: FailureDetails | null;
}

/** What failed: the activity's classified ApplicationFailure, or a lost worker (timeout). */
export function seenFailure(err: unknown): SeenFailure | null {
  if (!(err instanceof ActivityFailure)) return null;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) {
    const d = cause.details?.[0];
    return { type: cause.type ?? 'Unknown', message: cause.message, details: d && typeof d === 'object' && 'failedAtMs' in d ? (d as FailureDetails) : null };
  }
  if (cause instanceof TimeoutFailure) return { type: 'WorkerLost', message: `activity timed out (${String(cause.timeoutType ?? 'timeout')}) after its retries: ${cause.message}`, details: null };
  return { type: 'Unknown', message: cause?.message ?? err.message, details: null };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function get(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** The value of a trainer key after the policies' overrides (last one wins). */
function effective(trainer: unknown, overrides: string[], key: string): unknown {
  for (let i = overrides.length - 1; i >= 0; i--) {
    const o = overrides[i]!;
    const eq = o.indexOf('=');
    if (o.slice(0, eq).replace(/^\+\+/, '') === key) {
      const v = Number(o.slice(eq + 1));
      return Number.isFinite(v) ? v : o.slice(eq + 1);
    }
  }
  return get(trainer, key);
}

/** Where the OOM policy starts from: the config plus earlier overrides, with the backend's defaults. */
export function oomKnobs(cfg: PipelineConfig, overrides: string[]): OomKnobs {
  const t = cfg.trainer;
  const spec = traitsOf(cfg.backend).oom;
  const e = (k: string) => num(effective(t, overrides, k));
  const megatron = effective(t, overrides, 'policy.megatron_cfg.enabled') === true;
  const parKey = megatron && spec.parallelism.megatronKey ? spec.parallelism.megatronKey : spec.parallelism.key;
  return {
    microBatch: e('policy.train_micro_batch_size') ?? spec.microBatchDefault,
    logprobBatch: spec.logprobBatchKey ? e(spec.logprobBatchKey) : null,
    generationBatch: spec.generationBatch ? (e(spec.generationBatch.key) ?? spec.generationBatch.default) : null,
    generationBatchKey: spec.generationBatch?.key ?? null,
    gpuMemoryUtilization: spec.gpuMemoryUtilizationKey ? e(spec.gpuMemoryUtilizationKey) : null,
    gpuMemoryUtilizationKey: spec.gpuMemoryUtilizationKey,
    parallelism: e(parKey) ?? 1,
    parallelismKey: parKey,
    parallelismKind: spec.parallelism.kind,
    gpusPerNode: t.cluster.gpus_per_node,
  };
}

/** What a failure site knows; the ledger entry derives steps and time lost from it. */
export type LedgerFacts = Pick<LedgerEntry, 'stage' | 'attempt' | 'type' | 'rule' | 'action' | 'configChanges' | 'stepAtFailure' | 'message'> & {
  failedAtMs: number;
  checkpointStep: number | null;
  workSinceMs: number | null;
};

export function ledgerEntry(p: LedgerFacts): LedgerEntry {
  const lost = p.stepAtFailure !== null ? Math.max(0, p.stepAtFailure - (p.checkpointStep ?? 0)) : null;
  return {
    time: new Date(p.failedAtMs).toISOString(),
    stage: p.stage,
    attempt: p.attempt,
    type: p.type,
    rule: p.rule,
    action: p.action,
    configChanges: p.configChanges,
    stepAtFailure: p.stepAtFailure,
    resumedFromStep: p.stage === 'train' ? (p.checkpointStep ?? 0) : null,
    stepsLost: p.stage === 'train' ? lost : 0,
    timeLostSeconds: p.stage === 'train' && lost && p.workSinceMs ? Math.max(0, Math.round((p.failedAtMs - p.workSinceMs) / 100) / 10) : p.stage === 'train' && lost === 0 ? 0 : null,
    recoverySeconds: null,
    trainerStartSeconds: null,
    message: p.message.split('\n')[0]!.slice(0, 500),
  };
}
