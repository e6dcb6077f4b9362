/**
 * The search attributes every training run carries, so `temporal workflow list --query ...`, the
 * Web UI and `grpo list` can filter runs. Deterministic (the workflow imports it).
 */
import { defineSearchAttributeKey } from '@temporalio/common';

export const RUN_ATTRIBUTES = {
  backend: defineSearchAttributeKey('GrpoBackend', 'KEYWORD'),
  model: defineSearchAttributeKey('GrpoModel', 'KEYWORD'),
  config: defineSearchAttributeKey('GrpoConfig', 'KEYWORD'),
  state: defineSearchAttributeKey('GrpoState', 'KEYWORD'),
  bestAccuracy: defineSearchAttributeKey('GrpoBestAccuracy', 'DOUBLE'),
} as const;

/** Name → Temporal type, for registering them on a namespace. */
export const RUN_ATTRIBUTE_TYPES: Record<string, 'KEYWORD' | 'DOUBLE'> = Object.fromEntries(
  Object.values(RUN_ATTRIBUTES).map((k) => [k.name, k.type as 'KEYWORD' | 'DOUBLE']),
);

/** The config's name as runs are filtered by it: the file name without .yaml, or the inline label. */
export function configName(configSource: string): string {
  const base = configSource.split('/').pop() ?? configSource;
  return base.replace(/\.ya?ml$/, '');
}
