import type { FailureReport, MetricRecord } from './types.js';
import type { Metrics } from '../common/types.js';

/** Parse one metrics.jsonl line of the builtin trainer contract. */
export function parseMetricsJsonLine(line: string): MetricRecord | null {
  const t = line.trim();
  if (!t) return null;
  let obj: unknown;
  try {
    obj = JSON.parse(t);
  } catch {
    return null;
  }
  if (!obj || typeof obj !== 'object') return null;
  const o = obj as Record<string, unknown>;
  const step = typeof o.step === 'number' ? o.step : NaN;
  if (!Number.isFinite(step)) return null;
  const metrics: Metrics = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'kind' || k === 'step') continue;
    if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v;
  }
  if (o.kind === 'train') {
    const ids = o['train/task_ids'];
    const taskIds = Array.isArray(ids) && ids.length && ids.every((t) => typeof t === 'string') ? (ids as string[]) : undefined;
    if (!taskIds) return { kind: 'train', step, metrics };
    const rewards = o['train/rollout_rewards'];
    const rolloutRewards = Array.isArray(rewards) && rewards.length === taskIds.length && rewards.every((r) => typeof r === 'number' && Number.isFinite(r))
      ? (rewards as number[])
      : undefined;
    return rolloutRewards ? { kind: 'train', step, metrics, taskIds, rolloutRewards } : { kind: 'train', step, metrics, taskIds };
  }
  if (o.kind === 'validation') return { kind: 'validation', step, metrics };
  return null;
}

const FAILURE_TYPES = new Set(['OutOfMemory', 'RayFailure', 'RateLimited', 'InvalidConfig', 'InvalidData', 'ModelLoad', 'StorageError', 'Unknown']);

export function parseFailureJson(text: string): FailureReport | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (!o || typeof o !== 'object') return null;
    const type = typeof o.type === 'string' && FAILURE_TYPES.has(o.type) ? o.type : 'Unknown';
    return {
      type,
      message: typeof o.message === 'string' ? o.message : JSON.stringify(o.message ?? ''),
      step: typeof o.step === 'number' ? o.step : null,
      retryAfterSeconds: typeof o.retry_after === 'number' ? o.retry_after : null,
    };
  } catch {
    return null;
  }
}
