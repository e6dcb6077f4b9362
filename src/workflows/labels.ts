/**
 * The run's search attributes (src/search/attributes.ts), set and updated by the workflow once the
 * validate stage found them registered; an unchanged value is not written again (each write is a
 * history event). Deterministic code only.
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { ResolvedRun } from '../common/types.js';
import { configName, RUN_ATTRIBUTES } from '../search/attributes.js';
import type { LiveRun } from './carry.js';

export interface RunLabels {
  backend?: string;
  model?: string;
  config?: string;
  state?: string;
  bestAccuracy?: number;
}

export function runLabels(run: ResolvedRun, state: string): RunLabels {
  const m = run.config.model;
  return { backend: run.config.backend, model: m.name ?? m.source, config: configName(run.configSource), state };
}

export function label(live: LiveRun, labels: RunLabels): void {
  if (!live.searchAttributes) return;
  const set = (live.labels ??= {}) as Record<string, unknown>;
  const pairs: SearchAttributeUpdatePair[] = [];
  for (const [k, v] of Object.entries(labels) as [keyof RunLabels, string | number | undefined][]) {
    if (v === undefined || set[k] === v) continue;
    set[k] = v;
    pairs.push({ key: RUN_ATTRIBUTES[k], value: v } as SearchAttributeUpdatePair);
  }
  if (pairs.length) upsertSearchAttributes(pairs);
}
