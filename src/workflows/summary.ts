/** The run's status object and its summary at the end. Deterministic code only. */
import { STAGES, type ResolvedRun, type RunState, type RunStatus, type StageState, type Summary } from '../common/types.js';
import { iso } from './input.js';

export function summaryOf(status: RunStatus, run: ResolvedRun, finalState: RunState, startedMs: number): Summary {
  return {
    runId: run.runId,
    state: finalState,
    backend: run.config.backend,
    configSource: run.configSource,
    steps: { completed: status.step, total: status.totalSteps },
    baselineAccuracy: status.baseline?.accuracy ?? null,
    warmAccuracy: status.warm?.accuracy ?? null,
    finalAccuracy: status.final?.accuracy ?? null,
    finalModel: status.final?.model ?? null,
    validationTasks: { baseline: status.baseline?.numTasks ?? null, warm: status.warm?.numTasks ?? null, final: status.final?.numTasks ?? null },
    warmStart: status.warmStart ?? null,
    checkpoints: status.checkpoints,
    best: status.best,
    metricName: status.metricName,
    latestTrain: status.latestTrain,
    latestValidation: status.latestValidation,
    failures: status.failures,
    ledger: status.ledger,
    recoveries: status.ledger.filter((e) => !e.action.startsWith('gave up')).length,
    configChanges: status.configChanges,
    warnings: status.warnings,
    promotion: status.promotion ?? null,
    startedAt: status.startedAt,
    finishedAt: iso(Date.now()),
    elapsedSeconds: Math.round((Date.now() - startedMs) / 1000),
    runDir: run.paths.runDir,
  };
}

/** A run's status before anything happened: every stage pending. */
export function newStatus(workflowId: string, startedMs: number): RunStatus {
  return {
    runId: workflowId,
    state: 'running',
    stage: 'validate',
    backend: 'unknown',
    stages: STAGES.map((name) => ({ name, state: 'pending' as StageState })),
    step: 0,
    totalSteps: 0,
    latestTrain: {},
    latestValidation: {},
    checkpoints: [],
    best: null,
    metricName: 'val:accuracy',
    baseline: null,
    warm: null,
    warmStart: null,
    final: null,
    attempts: {},
    failures: [],
    ledger: [],
    configChanges: [],
    warnings: [],
    promotion: null,
    startedAt: iso(startedMs),
    updatedAt: iso(startedMs),
    elapsedSeconds: 0,
    runDir: null,
    summaryPath: null,
  };
}
