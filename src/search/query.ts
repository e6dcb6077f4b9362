/** A visibility query for training runs from `grpo list` filters (the same one works in `temporal workflow list --query`). */
import { WORKFLOW_TYPE } from '../common/types.js';
import { RUN_ATTRIBUTES } from './attributes.js';

export interface RunFilters {
  backend?: string;
  model?: string;
  config?: string;
  state?: string;
  minAccuracy?: number;
}

const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function runQuery(f: RunFilters): string {
  // A continued-as-new execution is one part of a run, not a run of its own.
  const parts = [`WorkflowType = '${WORKFLOW_TYPE}'`, `ExecutionStatus != 'ContinuedAsNew'`];
  const keyword: [string | undefined, string][] = [
    [f.backend, RUN_ATTRIBUTES.backend.name],
    [f.model, RUN_ATTRIBUTES.model.name],
    [f.config, RUN_ATTRIBUTES.config.name],
    [f.state, RUN_ATTRIBUTES.state.name],
  ];
  for (const [v, name] of keyword) if (v !== undefined) parts.push(`${name} = ${quote(v)}`);
  if (f.minAccuracy !== undefined) parts.push(`${RUN_ATTRIBUTES.bestAccuracy.name} >= ${f.minAccuracy}`);
  return parts.join(' AND ');
}
