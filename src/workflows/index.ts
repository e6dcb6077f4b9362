/**
 * `trainingRun`: one GRPO training run as a durable workflow. Deterministic code only: no I/O,
 * no Node built-ins; every side effect is an activity.
 */
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { DEFAULT_RECOVERY, decide, type RecoverySettings } from '../failures/policy.js';
import { FATAL_TYPES } from '../failures/types.js';
import { ledgerEntry, oomKnobs, seenFailure } from './recovery.js';
import { traitsOf } from '../backends/traits.js';
import { failureOf, iso, validateInput } from './input.js';
import { newStatus, summaryOf } from './summary.js';

export { validateInput } from './input.js';
import type * as activities from '../activities/index.js';
import {
  trainQueueFor,
  type CheckpointBook,
  type DataInfo,
  type EnvInfo,
  type LedgerEntry,
  type ModelInfo,
  type ProgressUpdate,
  type RayInfo,
  type ResolvedRun,
  type RunState,
  type RunStatus,
  type StageName,
  type StageState,
  type Summary,
  type TrainingRunInput,
} from '../common/types.js';

export const statusQuery = defineQuery<RunStatus>('status');
export const progressSignal = defineSignal<[ProgressUpdate]>('progress');

const NON_RETRYABLE = [...FATAL_TYPES];

const light = proxyActivities<typeof activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

export async function trainingRun(rawInput: TrainingRunInput): Promise<Summary> {
  const info = workflowInfo();
  const startedMs = Date.now();
  const status: RunStatus = newStatus(info.workflowId, startedMs);
  const touch = () => {
    status.updatedAt = iso(Date.now());
    status.elapsedSeconds = Math.round((Date.now() - startedMs) / 1000);
  };
  const setStage = (name: StageName, state: StageState, detail?: string) => {
    const s = status.stages.find((x) => x.name === name)!;
    s.state = state;
    if (state === 'running') {
      s.startedAt = iso(Date.now());
      status.stage = name;
    } else if (state !== 'pending') s.endedAt = iso(Date.now());
    if (detail !== undefined) s.detail = detail;
    touch();
  };
  setHandler(statusQuery, () => {
    status.elapsedSeconds = Math.round((Date.now() - startedMs) / 1000);
    return status;
  });
  setHandler(progressSignal, (u: ProgressUpdate) => {
    status.attempts[u.stage] = Math.max(status.attempts[u.stage] ?? 0, u.attempt);
    if (u.step !== undefined && u.stage === 'train') status.step = Math.max(status.step, u.step);
    if (u.totalSteps) status.totalSteps = u.totalSteps;
    if (u.train) status.latestTrain = { ...status.latestTrain, ...u.train };
    if (u.validation) status.latestValidation = { ...status.latestValidation, ...u.validation };
    if (u.failure) status.failures.push({ stage: u.stage, attempt: u.attempt, time: iso(Date.now()), ...u.failure, step: u.failure.step ?? null });
    if (u.lostAttempt) {
      const l = u.lostAttempt;
      used.WorkerLost = (used.WorkerLost ?? 0) + 1;
      const e = ledgerEntry({
        stage: u.stage, attempt: u.attempt - 1, type: 'WorkerLost', rule: 'heartbeat-timeout', action: l.action, configChanges: [],
        failedAtMs: l.failedAtMs, stepAtFailure: l.stepAtFailure, checkpointStep: l.checkpointStep, workSinceMs: l.workSinceMs,
        message: 'the worker running this activity stopped heartbeating (crash, kill or host loss)',
      });
      status.ledger.push(e);
      status.failures.push({ stage: u.stage, attempt: u.attempt - 1, time: e.time, type: 'WorkerLost', message: e.message, step: l.stepAtFailure });
    }
    if (u.running) markRecovered(u.running.atMs, u.running.launchedAtMs);
    if (u.stageDetail) status.stages.find((x) => x.name === u.stage)!.detail = u.stageDetail;
    touch();
  });
  /** Training runs again: close the open ledger entries (fault → trainer running). */
  const markRecovered = (atMs: number, launchedAtMs: number) => {
    for (const e of status.ledger)
      if (e.recoverySeconds === null && e.stage === 'train' && Date.parse(e.time) <= atMs) {
        e.recoverySeconds = Math.round((atMs - Date.parse(e.time)) / 100) / 10;
        e.trainerStartSeconds = Math.round((atMs - Math.max(launchedAtMs, Date.parse(e.time))) / 100) / 10;
      }
  };
  const used: Record<string, number> = {};

  // 1. validate input (pure) and config (activity: reads the file, zod, secrets)
  setStage('validate', 'running');
  let input: TrainingRunInput;
  try {
    input = validateInput(rawInput);
  } catch (e) {
    setStage('validate', 'failed', (e as Error).message);
    status.state = 'failed';
    throw e;
  }
  let run: ResolvedRun;
  try {
    run = await light.resolveRun({ ...input, workflowId: info.workflowId });
  } catch (e) {
    const f = failureOf(e, 'validate', 1);
    status.failures.push(f);
    setStage('validate', 'failed', f.message);
    status.state = 'failed';
    if (f.type === 'InvalidConfig' || f.type === 'InvalidInput')
      throw ApplicationFailure.create({ type: f.type, nonRetryable: true, message: f.message });
    throw e;
  }
  status.runId = run.runId;
  status.backend = run.config.backend;
  status.totalSteps = run.config.trainer.grpo.max_num_steps;
  status.metricName = run.config.trainer.checkpointing.metric_name;
  status.warnings = [...run.warnings];
  status.runDir = run.paths.runDir;
  for (const w of run.warnings) log.warn(w);
  setStage('validate', 'done');

  const cfg = run.config;
  const traits = traitsOf(cfg.backend);
  const hb = `${cfg.run.heartbeat_timeout_s} seconds`;
  const setup = proxyActivities<typeof activities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: hb,
    retry: { initialInterval: '5s', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  // Runs started before the recovery section existed carry no such key: their history must
  // still replay, with the defaults they would get today.
  const recovery = (cfg.recovery ?? DEFAULT_RECOVERY) as RecoverySettings;
  // Temporal itself retries only lost workers (heartbeat timeouts); every classified failure
  // comes back to `recover` below, which applies its policy and budget.
  const heavyRetry = { initialInterval: '5s', maximumInterval: '5 minutes', maximumAttempts: Math.max(cfg.run.max_attempts, recovery.budgets.WorkerLost + 1), nonRetryableErrorTypes: NON_RETRYABLE };
  const trainer = proxyActivities<typeof activities>({
    taskQueue: trainQueueFor(info.taskQueue),
    startToCloseTimeout: `${cfg.run.segment_timeout_min} minutes`,
    heartbeatTimeout: hb,
    retry: heavyRetry,
  });
  const evaluator = proxyActivities<typeof activities>({
    taskQueue: trainQueueFor(info.taskQueue),
    startToCloseTimeout: `${cfg.eval.timeout_min} minutes`,
    heartbeatTimeout: hb,
    retry: heavyRetry,
  });
  // BFCL v3 before/after (bfcl.enabled): a failure is a warning, not a failed run.
  const bfclRunner = proxyActivities<typeof activities>({
    taskQueue: trainQueueFor(info.taskQueue),
    startToCloseTimeout: `${cfg.bfcl?.timeout_min ?? 90} minutes`,
    heartbeatTimeout: hb,
    retry: { initialInterval: '5s', maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  const runBfcl = async (which: 'baseline' | 'warm' | 'final', modelPath: string) => {
    if (!cfg.bfcl?.enabled || !patched('bfcl-before-after')) return;
    try {
      const r = await bfclRunner.bfclEvaluate({ run, env: env!, which, modelPath });
      if (r) log.info(`BFCL ${which}`, { overall: r.overall.accuracy, version: r.version });
    } catch (e) {
      if (isCancellation(e)) throw e;
      status.warnings.push(`BFCL ${which} failed: ${failureOf(e, which === 'baseline' ? 'baselineEval' : which === 'warm' ? 'warmStart' : 'finalEval', 1).message.split('\n')[0]}`);
    }
  };

  let ray: RayInfo | null = null;
  let finalState: RunState = 'completed';
  let current: StageName = 'prepareEnvironment';
  let pendingError: unknown = null;

  let env: EnvInfo | null = null;
  let modelCached = false;
  /**
   * Run a stage's activity; on a classified failure apply that type's policy (within its budget):
   * change the config, restart Ray, wait, go offline... then try again. Every failure lands in the
   * ledger with what was done about it.
   */
  const recover = async <T>(name: StageName, fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const r = await fn();
        // Stages other than training recover when their activity finally succeeds.
        for (const e of status.ledger)
          if (e.stage === name && name !== 'train' && e.recoverySeconds === null && !e.action.startsWith('gave up')) e.recoverySeconds = Math.round((Date.now() - Date.parse(e.time)) / 100) / 10;
        return r;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const f = seenFailure(err);
        if (!f) throw err;
        const d = f.details;
        const action = decide({
          type: f.type,
          stage: name,
          used: used[f.type] ?? 0,
          settings: recovery,
          retryAfterSeconds: d?.retryAfterSeconds ?? null,
          oom: oomKnobs(cfg, run.trainerOverrides ?? []),
          modelCached: modelCached || (d?.modelCached ?? false),
          rayOwner: ray ? (ray.external ? 'user' : 'pipeline') : traits.ownRayCluster ? 'trainer' : 'pipeline',
          random: Math.random(),
        });
        const entry: LedgerEntry = ledgerEntry({
          stage: name, attempt: status.attempts[name] ?? 1, type: f.type, rule: d?.rule ?? (f.type === 'WorkerLost' ? 'heartbeat-timeout' : 'activity-error'),
          action: action.kind === 'fail' ? `gave up: ${action.reason}` : action.reason, configChanges: action.configChanges,
          failedAtMs: d?.failedAtMs ?? Date.now(), stepAtFailure: d?.step ?? null, checkpointStep: d?.checkpointStep ?? null, workSinceMs: d?.workSinceMs ?? null,
          message: f.message,
        });
        status.ledger.push(entry);
        touch();
        if (action.kind === 'fail') {
          log.error('recovery gave up', { stage: name, type: f.type, reason: action.reason });
          throw err;
        }
        used[f.type] = (used[f.type] ?? 0) + 1;
        log.warn('recovering', { stage: name, type: f.type, action: action.reason, waitSeconds: action.waitSeconds });
        const s = status.stages.find((x) => x.name === name)!;
        s.detail = `recovering from ${f.type}: ${action.reason}`;
        if (action.configChanges.length) {
          run = { ...run, trainerOverrides: [...(run.trainerOverrides ?? []), ...action.configChanges] };
          status.configChanges.push(...action.configChanges);
        }
        if (action.goOffline) run = { ...run, hubOffline: true };
        if (action.stopForcedVenvRebuild && env && traits.forcedVenvRebuild) env = { ...env, nrlForceRebuildVenvs: false };
        if (action.waitSeconds > 0) await sleep(action.waitSeconds * 1000);
        if (action.restartRay && ray && env) ray = await setup.restartRay({ run, env, forceCleanup: action.forceCleanup });
      }
    }
  };

  const stage = async <T>(name: StageName, fn: () => Promise<T>, detail?: (r: T) => string): Promise<T> => {
    current = name;
    setStage(name, 'running');
    const r = await recover(name, fn);
    setStage(name, 'done', detail?.(r));
    return r;
  };

  try {
    env = await stage(
      'prepareEnvironment',
      async () => {
        const e = await setup.prepareEnvironment({ run, force: input.force ?? false });
        const checked = await setup.checkTrainerConfig({ run, env: e });
        // The trainer's own warnings about its section (e.g. checkpoints that will carry no metric).
        for (const w of checked.warnings ?? []) if (!status.warnings.includes(w)) status.warnings.push(w);
        return e;
      },
      (e) => `${e.rebuilt ? 'built' : 'reused'} ${e.envDir} (fingerprint ${e.fingerprint})${traits.forcedVenvRebuild ? `; NRL_FORCE_REBUILD_VENVS=${e.nrlForceRebuildVenvs}` : ''}`,
    );
    const data: DataInfo = await stage('prepareData', () => setup.prepareData({ run, env: env! }), (d) => d.dataDir);
    const model: ModelInfo = await stage('fetchModel', () => setup.fetchModel({ run, env: env! }), (m) => `${m.modelDir} (${m.fingerprint})`);
    modelCached = true;
    if (cfg.ray.enabled) ray = await stage('startRay', () => setup.startRay({ run, env: env! }), (r) => `RAY_ADDRESS=${r.address}`);
    else setStage('startRay', 'skipped', 'ray.enabled=false');
    if (ray?.authenticated === false) {
      const w = `the Ray cluster at ${ray.address} (ray.address) accepts clients without a token: anyone who can reach it can run code there; enable Ray's token authentication (docs/security.md)`;
      status.warnings.push(w);
      log.warn(w);
    }

    // Resume: a re-started workflow for an existing run dir continues from its newest checkpoint.
    let book: CheckpointBook = await light.bookkeepCheckpoints({ run });
    const applyBook = (b: CheckpointBook) => {
      book = b;
      status.checkpoints = b.retained;
      status.best = b.best;
      if (b.newest) status.step = Math.max(status.step, b.newest.step);
      touch();
    };
    applyBook(book);

    if (cfg.eval.baseline && status.step === 0) {
      status.baseline = await stage(
        'baselineEval',
        () => evaluator.evaluate({ run, env: env!, data, model, ray, which: 'baseline', modelPath: model.modelDir }),
        (r) => (r ? `accuracy ${r.accuracy.toFixed(3)} on ${r.numTasks} tasks` : 'not supported by backend'),
      );
      await runBfcl('baseline', model.modelDir);
    } else setStage('baselineEval', 'skipped', cfg.eval.baseline ? 'resumed run (already trained)' : 'eval.baseline=false');

    // Supervised warm start: GRPO starts from its model. A resumed run passes through it too (the
    // trainer reuses the finished warm start), so its checkpoints keep the model they were made from.
    let policyStart: ModelInfo = model;
    const warmEnabled = cfg.trainer.warm_start?.enabled === true;
    if (warmEnabled && traits.supportsWarmStart && patched('warm-start')) {
      const evalWarm = cfg.eval.baseline && status.step === 0;
      const w = await stage(
        'warmStart',
        async () => {
          const r = await trainer.warmStart({ run, env: env!, data, model });
          status.warmStart = r;
          if (evalWarm) status.warm = await evaluator.evaluate({ run, env: env!, data, model, ray, which: 'warm', modelPath: r.model.modelDir });
          return r;
        },
        (r) => `${r.reused ? 'reused' : 'trained'} on ${r.traces} traces (${r.steps} steps)${status.warm ? `; accuracy ${status.warm.accuracy.toFixed(3)}` : ''}: ${r.model.modelDir}`,
      );
      if (evalWarm) await runBfcl('warm', w.model.modelDir);
      policyStart = w.model;
    } else setStage('warmStart', 'skipped', !warmEnabled ? 'trainer.warm_start.enabled is false' : `not supported by backend ${cfg.backend}`);

    current = 'train';
    setStage('train', 'running');
    const total = cfg.trainer.grpo.max_num_steps;
    const seg = traits.singleLaunch ? total : cfg.run.segment_steps;
    let step = book.newest?.step ?? 0;
    while (step < total) {
      const target = Math.min((Math.floor(step / seg) + 1) * seg, total);
      log.info('training segment', { from: step, to: target });
      const r = await recover('train', () => trainer.trainSegment({ run, env: env!, data, model: policyStart, ray, stopAfterStep: target }));
      status.latestTrain = { ...status.latestTrain, ...r.latestTrain };
      status.latestValidation = { ...status.latestValidation, ...r.latestValidation };
      status.attempts.train = Math.max(status.attempts.train ?? 0, r.attempt);
      applyBook(await light.bookkeepCheckpoints({ run }));
      if (r.step <= step && r.step < target) {
        log.warn('trainer made no progress; stopping', { step: r.step, target });
        break;
      }
      step = r.step;
      status.step = step;
      if (r.finished) break;
    }
    setStage('train', 'done', `step ${status.step}/${total}`);

    const target = book.best ?? book.newest;
    if (cfg.eval.final && target) {
      status.final = await stage(
        'finalEval',
        () => evaluator.evaluate({ run, env: env!, data, model, ray, which: 'final', modelPath: target.dir }),
        (r) => (r ? `accuracy ${r.accuracy.toFixed(3)} (step_${target.step})` : 'not supported by backend'),
      );
      await runBfcl('final', target.dir);
    } else setStage('finalEval', 'skipped', cfg.eval.final ? 'no checkpoint' : 'eval.final=false');
  } catch (err) {
    pendingError = err;
    if (isCancellation(err)) {
      finalState = 'cancelled';
      setStage(current, 'cancelled');
      log.warn('run cancelled; cleaning up', { stage: current });
    } else {
      finalState = 'failed';
      const f = failureOf(err, current, status.attempts[current] ?? 1);
      if (!status.failures.some((x) => x.stage === f.stage && x.message === f.message)) status.failures.push(f);
      setStage(current, 'failed', f.message.split('\n')[0]);
      log.error('run failed', { stage: current, type: f.type });
    }
  }

  // Summary + cleanup run even when the run was cancelled (non-cancellable scope).
  const summary = await CancellationScope.nonCancellable(async () => {
    setStage('summary', 'running');
    status.state = finalState;
    touch();
    const s = summaryOf(status, run, finalState, startedMs);
    try {
      const written = await light.writeSummary({ summary: s });
      status.summaryPath = written.text;
      setStage('summary', 'done', written.json);
    } catch (e) {
      setStage('summary', 'failed', (e as Error).message);
    }
    // The run report (report.md, report.html with plots); it adds the success criteria to the summary files.
    if (status.summaryPath && patched('run-report')) {
      try {
        const r = await light.writeReport({ run, env });
        setStage('summary', 'done', `${status.stages.find((x) => x.name === 'summary')?.detail ?? ''}; report ${r.html}`);
      } catch (e) {
        status.warnings.push(`report not written: ${(e as Error).message}`);
      }
    }
    setStage('cleanup', 'running');
    try {
      const c = await light.cleanupRun({ run });
      setStage('cleanup', 'done', `${c.rayStopped ? 'stopped Ray' : 'no Ray to stop'}${c.trainerStopped ? '; stopped orphan trainer' : ''}`);
    } catch (e) {
      setStage('cleanup', 'failed', (e as Error).message);
    }
    return s;
  });
  if (pendingError) throw pendingError;
  return summary;
}
