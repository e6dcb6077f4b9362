/**
 * Runs of any length: between training segments the workflow continues as new before its history
 * grows large, handing the next execution everything it had learnt (status, ledger, budgets, the
 * prepared environment, data, model and Ray head), so it picks up at the next segment.
 * Deterministic code only.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { BfclResult } from '../activities/bfcl.js';
import type { DataInfo, EnvInfo, ModelInfo, RayInfo, ResolvedRun } from '../common/types.js';
import type { TrackerState } from './tracker.js';

/** What the workflow knows about its run once the setup stages are done (recovery may change it). */
export interface LiveRun {
  run: ResolvedRun;
  env: EnvInfo | null;
  ray: RayInfo | null;
  data: DataInfo | null;
  model: ModelInfo | null;
  /** The model GRPO starts from (the warmed model, or `model`). */
  policyStart: ModelInfo | null;
  modelCached: boolean;
  /** The run's search attributes are registered on the server (set and updated by the workflow). */
  searchAttributes: boolean;
  /** BFCL results so far (the promotion compares them). */
  bfcl?: { baseline: BfclResult | null; final: BfclResult | null };
  /** The values last written to them. */
  labels?: Record<string, string | number>;
}

/** The hand-over between executions of one run (the `carry` field of the workflow input). */
export interface Carry {
  tracker: TrackerState;
  live: LiveRun;
  /** Executions before this one. */
  executions: number;
}

/** Time to continue as new: the history reached `limit` events, or the server suggests it. */
export function historyIsLarge(limit: number): boolean {
  const info = workflowInfo();
  return info.historyLength >= limit || info.continueAsNewSuggested;
}
