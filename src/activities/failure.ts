/**
 * Failure glue shared by the stages that run trainer commands: classify a failed command and throw
 * it as a typed, non-retryable ApplicationFailure for the workflow's recovery loop.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { getBackend, type CommandSpec } from '../backends/index.js';
import { listCheckpoints } from '../checkpoints/reader.js';
import { attempt, confirmCancel, reportProgress } from '../common/activity-context.js';
import { redact } from '../common/redact.js';
import type { FailureDetails, ResolvedRun, StageName } from '../common/types.js';
import { classifyFailure } from '../failures/classifier.js';
import { oomKillCount } from '../process/proc.js';
import { runTracked, type TrackedResult } from '../process/supervise.js';

/** A short trainer command of a stage (check-config, prepare-data), its output in the run's logs. */
export async function runSimple(run: ResolvedRun, spec: CommandSpec, logName: string, stage: StageName): Promise<TrackedResult> {
  const r = await runTracked(spec, join(run.paths.logDir, logName), { tickMs: 3000, onTick: () => ({ stage, label: spec.label }) });
  if (r.cancelled) confirmCancel();
  return r;
}

export interface FailureContext {
  /** The trainer's failure.json (default: the backend's). */
  failurePath?: string;
  /** cgroup OOM-kill count before the process started. */
  oomKillsBefore?: number | null;
  /** Step reached, when the trainer did not say (from metrics / heartbeats). */
  step?: number | null;
  /** When the lost work started: the attempt's trainer start. */
  startedAtMs?: number;
  modelCached?: boolean;
}

/**
 * Classify a failed trainer command and throw it as a non-retryable ApplicationFailure of that type:
 * the workflow's recovery policy (src/failures/policy.ts) decides what happens next, with its own
 * budget per type. Only worker loss (heartbeat timeout) is retried by Temporal itself.
 */
export async function failureFromTrainer(run: ResolvedRun, stage: StageName, r: TrackedResult, label: string, fc: FailureContext = {}): Promise<never> {
  const backend = getBackend(run.config.backend);
  const failurePath = fc.failurePath ?? backend.failureFile(run.paths);
  const report = existsSync(failurePath) ? backend.parseFailure(await readFile(failurePath, 'utf8')) : null;
  const oomNow = oomKillCount();
  const c = classifyFailure({
    report,
    exitCode: r.code,
    signal: r.signal,
    logTail: r.tail,
    oomKillObserved: fc.oomKillsBefore != null && oomNow != null && oomNow > fc.oomKillsBefore,
  });
  const newest = (await listCheckpoints(run.paths.checkpointDir, run.config.trainer.checkpointing.metric_name)).complete.at(-1) ?? null;
  const failedAtMs = Date.now();
  const since = Math.max(newest?.savedAtMs ?? 0, fc.startedAtMs ?? 0);
  const details: FailureDetails = {
    rule: c.rule,
    step: report?.step ?? fc.step ?? null,
    exitCode: r.code,
    signal: r.signal,
    failedAtMs,
    retryAfterSeconds: c.retryAfterSeconds,
    checkpointStep: newest?.step ?? null,
    workSinceMs: since > 0 ? since : null,
    modelCached: fc.modelCached ?? true,
  };
  const how = r.signal ?? `code ${r.code}`;
  const message = redact(
    report && report.type !== 'Unknown'
      ? `${label} failed: ${report.type}: ${report.message}`
      : `${label} exited with ${how}: ${c.type} (classifier rule ${c.rule})${report ? `: ${report.message}` : c.evidence ? `: ${c.evidence}` : ''}\n${r.tail.slice(-1500)}`,
  );
  await reportProgress({ stage, attempt: attempt(), failure: { type: c.type, message, step: details.step } }, { force: true });
  throw ApplicationFailure.create({ type: c.type, message, nonRetryable: true, details: [details] });
}

