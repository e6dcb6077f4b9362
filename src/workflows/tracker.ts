/**
 * The run's status as the workflow keeps it: stage transitions, progress signals from activities,
 * the recovery ledger and the budgets used. It survives continue-as-new whole (see `carried`), so
 * `grpo status` and the summary read the same across execution boundaries. Deterministic code only.
 */
import type { ProgressUpdate, RunStatus, StageName, StageState } from '../common/types.js';
import { iso } from './input.js';
import { ledgerEntry } from './recovery.js';
import { newStatus } from './summary.js';

/** What a tracker hands to the next execution. */
export interface TrackerState {
  status: RunStatus;
  used: Record<string, number>;
  startedMs: number;
}

export class StatusTracker {
  readonly status: RunStatus;
  /** Recovery budget used, per failure type. */
  readonly used: Record<string, number>;
  readonly startedMs: number;

  constructor(workflowId: string, nowMs: number, carried?: TrackerState) {
    this.startedMs = carried?.startedMs ?? nowMs;
    this.status = carried?.status ?? newStatus(workflowId, this.startedMs);
    this.used = carried?.used ?? {};
  }

  carried(): TrackerState {
    return { status: this.status, used: this.used, startedMs: this.startedMs };
  }

  touch(): void {
    this.status.updatedAt = iso(Date.now());
    this.status.elapsedSeconds = Math.round((Date.now() - this.startedMs) / 1000);
  }

  setStage(name: StageName, state: StageState, detail?: string): void {
    const s = this.status.stages.find((x) => x.name === name)!;
    s.state = state;
    if (state === 'running') {
      s.startedAt = iso(Date.now());
      this.status.stage = name;
    } else if (state !== 'pending') s.endedAt = iso(Date.now());
    if (detail !== undefined) s.detail = detail;
    this.touch();
  }

  /** The status query's answer. */
  snapshot(): RunStatus {
    this.status.elapsedSeconds = Math.round((Date.now() - this.startedMs) / 1000);
    return this.status;
  }

  /** A progress signal from an activity. */
  onProgress(u: ProgressUpdate): void {
    const status = this.status;
    status.attempts[u.stage] = Math.max(status.attempts[u.stage] ?? 0, u.attempt);
    if (u.step !== undefined && u.stage === 'train') status.step = Math.max(status.step, u.step);
    if (u.totalSteps) status.totalSteps = u.totalSteps;
    if (u.train) status.latestTrain = { ...status.latestTrain, ...u.train };
    if (u.validation) status.latestValidation = { ...status.latestValidation, ...u.validation };
    if (u.failure) status.failures.push({ stage: u.stage, attempt: u.attempt, time: iso(Date.now()), ...u.failure, step: u.failure.step ?? null });
    if (u.lostAttempt) {
      const l = u.lostAttempt;
      this.used.WorkerLost = (this.used.WorkerLost ?? 0) + 1;
      const e = ledgerEntry({
        stage: u.stage, attempt: u.attempt - 1, type: 'WorkerLost', rule: 'heartbeat-timeout', action: l.action, configChanges: [],
        failedAtMs: l.failedAtMs, stepAtFailure: l.stepAtFailure, checkpointStep: l.checkpointStep, workSinceMs: l.workSinceMs,
        message: 'the worker running this activity stopped heartbeating (crash, kill or host loss)',
      });
      status.ledger.push(e);
      status.failures.push({ stage: u.stage, attempt: u.attempt - 1, time: e.time, type: 'WorkerLost', message: e.message, step: l.stepAtFailure });
    }
    if (u.running) this.markRecovered(u.running.atMs, u.running.launchedAtMs);
    if (u.stageDetail) status.stages.find((x) => x.name === u.stage)!.detail = u.stageDetail;
    this.touch();
  }

  /** Training runs again: close the open ledger entries (fault → trainer running). */
  markRecovered(atMs: number, launchedAtMs: number): void {
    for (const e of this.status.ledger)
      if (e.recoverySeconds === null && e.stage === 'train' && Date.parse(e.time) <= atMs) {
        e.recoverySeconds = Math.round((atMs - Date.parse(e.time)) / 100) / 10;
        e.trainerStartSeconds = Math.round((atMs - Math.max(launchedAtMs, Date.parse(e.time))) / 100) / 10;
      }
  }

  /** A stage other than training finally succeeded: its open ledger entries are recovered. */
  closeRecovered(name: StageName): void {
    for (const e of this.status.ledger)
      if (e.stage === name && name !== 'train' && e.recoverySeconds === null && !e.action.startsWith('gave up')) e.recoverySeconds = Math.round((Date.now() - Date.parse(e.time)) / 100) / 10;
  }
}
