/**
 * Recovery policies, one per failure type, each with its own budget (SkyPilot's managed jobs keep
 * separate budgets per failure class; an OOM storm must not use up the budget for Ray hiccups).
 *
 * Pure and deterministic: the workflow calls `decide` and then carries out the returned action
 * with activities (rewrite the trainer config, restart Ray, wait). Jitter comes from the caller's
 * random source (inside a workflow, Temporal's seeded Math.random).
 */
import type { FailureType } from './types.js';
import { FATAL_TYPES } from './types.js';

export interface RecoverySettings {
  /** Retries allowed per failure type over the whole run. */
  budgets: Record<FailureType, number>;
  oom: {
    /** Smallest training micro batch the OOM policy may go down to. */
    min_micro_batch_size: number;
    /** NeMo RL: lowest vLLM gpu_memory_utilization the policy may set, and the step it lowers by. */
    min_gpu_memory_utilization: number;
    gpu_memory_utilization_step: number;
    /** Upper bound for raising tensor (NeMo RL) or data (built-in) parallelism; null = GPUs per node. */
    max_parallelism: number | null;
  };
  backoff: {
    initial_s: number;
    max_s: number;
  };
  /**
   * Also run the seed's host-wide cleanup (`pkill -f VllmAsyncGenerationWorker`, `ray stop --force`)
   * after a Ray failure. Off by default: those commands end every user's processes on the host.
   */
  force_cleanup: boolean;
}

export const DEFAULT_RECOVERY: RecoverySettings = {
  budgets: { OutOfMemory: 3, RayFailure: 3, RateLimited: 6, StorageError: 2, Killed: 3, Hung: 2, WorkerLost: 3, Unknown: 3, InvalidConfig: 0, InvalidData: 0, ModelLoad: 0 },
  oom: { min_micro_batch_size: 1, min_gpu_memory_utilization: 0.5, gpu_memory_utilization_step: 0.1, max_parallelism: null },
  backoff: { initial_s: 10, max_s: 600 },
  force_cleanup: false,
};

/** The knobs the OOM policy may turn, read from the current trainer config (null: the backend has no such knob). */
export interface OomKnobs {
  microBatch: number;
  /** Halved with the micro batch (NeMo RL policy.logprob_batch_size; null when unset). */
  logprobBatch: number | null;
  /** The generation batch and its key (built-in grpo.val_batch_size). */
  generationBatch: number | null;
  generationBatchKey: string | null;
  /** vLLM's gpu_memory_utilization and its key (NeMo RL). */
  gpuMemoryUtilization: number | null;
  gpuMemoryUtilizationKey: string | null;
  /** Tensor parallel size (NeMo RL) or data-parallel workers (built-in cluster.num_workers). */
  parallelism: number;
  /** The config key of `parallelism`. */
  parallelismKey: string;
  parallelismKind: 'tensor' | 'data';
  gpusPerNode: number;
}

export interface RecoveryAction {
  /** What the workflow does, in order. */
  kind: 'retry' | 'fail';
  reason: string;
  /** Seconds to wait (durable timer) before the retry. */
  waitSeconds: number;
  /** `a.b.c=value` overrides of the trainer section, applied before the retry. */
  configChanges: string[];
  /** Stop this run's Ray cluster (and leftover workers it started) and start a new one. */
  restartRay: boolean;
  /** Host-wide force cleanup commands to run (only when settings.force_cleanup). */
  forceCleanup: boolean;
  /** Later stages run with HF_HUB_OFFLINE=1 (the model is already in the cache). */
  goOffline: boolean;
  /** NeMo RL: the next launch uses NRL_FORCE_REBUILD_VENVS=false (the rebuild was rate limited). */
  stopForcedVenvRebuild: boolean;
}

export interface DecideInput {
  type: FailureType | string;
  stage: string;
  /** Retries already spent on this type in this run. */
  used: number;
  settings: RecoverySettings;
  retryAfterSeconds: number | null;
  oom: OomKnobs | null;
  modelCached: boolean;
  /** Who runs the run's Ray cluster: the pipeline (restarted after a Ray failure), the user (\`ray.address\`), or the trainer itself (NeMo RL; absent: the pipeline). */
  rayOwner?: 'pipeline' | 'user' | 'trainer';
  /** In [0,1): jitter source. */
  random: number;
}

const base = (reason: string): RecoveryAction => ({
  kind: 'retry',
  reason,
  waitSeconds: 0,
  configChanges: [],
  restartRay: false,
  forceCleanup: false,
  goOffline: false,
  stopForcedVenvRebuild: false,
});

const fail = (reason: string): RecoveryAction => ({ ...base(reason), kind: 'fail' });

/** Exponential backoff with full jitter, capped. */
export function backoffSeconds(used: number, s: RecoverySettings['backoff'], random: number): number {
  const cap = Math.min(s.max_s, s.initial_s * 2 ** used);
  return Math.round((cap / 2 + (random * cap) / 2) * 10) / 10;
}

/**
 * OOM ladder, first applicable rung wins: halve the micro batch (and the logprob batch), then lower
 * the generation memory share or batch, then raise parallelism when the node has GPUs for it.
 */
export function oomChanges(k: OomKnobs, s: RecoverySettings['oom']): { changes: string[]; what: string } | null {
  if (k.microBatch > s.min_micro_batch_size) {
    const mb = Math.max(s.min_micro_batch_size, Math.floor(k.microBatch / 2));
    const changes = [`policy.train_micro_batch_size=${mb}`];
    if (k.logprobBatch !== null && k.logprobBatch > 1) changes.push(`policy.logprob_batch_size=${Math.max(1, Math.floor(k.logprobBatch / 2))}`);
    return { changes, what: `halved the training micro batch ${k.microBatch} -> ${mb}${changes.length > 1 ? ' and the logprob batch' : ''}` };
  }
  if (k.gpuMemoryUtilizationKey && k.gpuMemoryUtilization !== null && k.gpuMemoryUtilization - s.gpu_memory_utilization_step >= s.min_gpu_memory_utilization - 1e-9) {
    const v = Math.round((k.gpuMemoryUtilization - s.gpu_memory_utilization_step) * 100) / 100;
    return { changes: [`${k.gpuMemoryUtilizationKey}=${v}`], what: `lowered vLLM gpu_memory_utilization ${k.gpuMemoryUtilization} -> ${v}` };
  }
  if (k.generationBatchKey && k.generationBatch !== null && k.generationBatch > 1) {
    const v = Math.floor(k.generationBatch / 2);
    return { changes: [`${k.generationBatchKey}=${v}`], what: `halved the generation batch ${k.generationBatch} -> ${v}` };
  }
  const maxPar = s.max_parallelism ?? k.gpusPerNode;
  if (k.gpusPerNode > 1 && k.parallelism * 2 <= maxPar) {
    const v = k.parallelism * 2;
    return { changes: [`${k.parallelismKey}=${v}`], what: `raised ${k.parallelismKind} parallelism ${k.parallelism} -> ${v}` };
  }
  return null;
}

export function decide(i: DecideInput): RecoveryAction {
  const { type, settings } = i;
  if (FATAL_TYPES.includes(type)) return fail(`${type} cannot be fixed by retrying`);
  const budget = settings.budgets[type as FailureType] ?? settings.budgets.Unknown;
  if (i.used >= budget) return fail(`${type} budget spent (${i.used}/${budget} retries)`);
  switch (type) {
    case 'OutOfMemory': {
      const c = i.oom ? oomChanges(i.oom, settings.oom) : null;
      if (!c) return fail('out of memory with every OOM knob already at its bound (micro batch, generation memory, parallelism)');
      return { ...base(`${c.what}; resuming from the newest checkpoint`), configChanges: c.changes };
    }
    case 'RayFailure':
      if (i.rayOwner === 'trainer')
        return {
          ...base(`relaunching; the trainer starts its own Ray cluster and resumes from its newest checkpoint${settings.force_cleanup ? ' (after the host-wide force cleanup)' : ''}`),
          waitSeconds: backoffSeconds(i.used, { initial_s: 2, max_s: settings.backoff.max_s }, i.random),
        };
      if (i.rayOwner === 'user')
        return { ...base("checked the user's Ray cluster again; resuming"), restartRay: true, waitSeconds: backoffSeconds(i.used, { initial_s: 2, max_s: settings.backoff.max_s }, i.random) };
      return {
        ...base(`restarted this run's Ray cluster${settings.force_cleanup ? ' after host-wide force cleanup' : ''}; resuming`),
        restartRay: true,
        forceCleanup: settings.force_cleanup,
        waitSeconds: backoffSeconds(i.used, { initial_s: 2, max_s: settings.backoff.max_s }, i.random),
      };
    case 'RateLimited': {
      const wait = i.retryAfterSeconds ?? backoffSeconds(i.used, settings.backoff, i.random);
      const a = base(`waited ${wait}s (${i.retryAfterSeconds !== null ? 'Retry-After' : 'backoff with jitter'})`);
      a.waitSeconds = wait;
      if (i.modelCached) {
        a.goOffline = true;
        a.reason += '; HF_HUB_OFFLINE=1 (model already cached)';
      }
      if (i.stage === 'prepareEnvironment' || i.stage === 'train') {
        a.stopForcedVenvRebuild = true;
        if (i.stage === 'prepareEnvironment') a.reason += '; NRL_FORCE_REBUILD_VENVS=false for the next launch';
      }
      return a;
    }
    case 'StorageError':
      return { ...base('removed incomplete checkpoint writes; resuming from the newest complete checkpoint'), waitSeconds: backoffSeconds(i.used, { initial_s: 5, max_s: 120 }, i.random) };
    case 'WorkerLost':
      return base('Temporal retried the activity after its heartbeat timed out; the old trainer was stopped first');
    case 'Killed':
      return base('resuming from the newest checkpoint');
    case 'Hung':
      return base('stopped the silent trainer; resuming from the newest checkpoint');
    default:
      return { ...base(`retrying with backoff`), waitSeconds: backoffSeconds(i.used, settings.backoff, i.random) };
  }
}
