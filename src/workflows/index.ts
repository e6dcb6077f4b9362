/**
 * `trainingRun`: one GRPO training run as a durable workflow. Deterministic code only: no I/O,
 * no Node built-ins; every side effect is an activity. A long run continues as new between
 * training segments (src/workflows/carry.ts); the next execution starts at the training loop.
 */
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { FATAL_TYPES } from '../failures/types.js';
import { DEFAULT_RECOVERY, type RecoverySettings } from '../failures/policy.js';
import { traitsOf } from '../backends/traits.js';
import { failureOf, validateInput } from './input.js';
import { summaryOf } from './summary.js';
import { StatusTracker } from './tracker.js';
import { historyIsLarge, type Carry, type LiveRun } from './carry.js';
import { makeRecover } from './recover.js';
import { label, runLabels } from './labels.js';
import { promoteBest } from './promotion.js';

export { validateInput } from './input.js';
import type * as activities from '../activities/index.js';
import {
  CONTINUE_AS_NEW_AFTER_EVENTS,
  trainQueueFor,
  type CheckpointBook,
  type ProgressUpdate,
  type RunState,
  type RunStatus,
  type StageName,
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

/** The validate stage: the input, the config (an activity reads the file), the run's search attributes. */
async function begin(t: StatusTracker, rawInput: TrainingRunInput, workflowId: string): Promise<{ input: TrainingRunInput; live: LiveRun }> {
  const status = t.status;
  t.setStage('validate', 'running');
  let input: TrainingRunInput;
  try {
    input = validateInput(rawInput);
  } catch (e) {
    t.setStage('validate', 'failed', (e as Error).message);
    status.state = 'failed';
    throw e;
  }
  let live: LiveRun;
  try {
    const run = await light.resolveRun({ ...input, workflowId });
    live = { run, env: null, ray: null, data: null, model: null, policyStart: null, modelCached: false, searchAttributes: false };
  } catch (e) {
    const f = failureOf(e, 'validate', 1);
    status.failures.push(f);
    t.setStage('validate', 'failed', f.message);
    status.state = 'failed';
    if (f.type === 'InvalidConfig' || f.type === 'InvalidInput')
      throw ApplicationFailure.create({ type: f.type, nonRetryable: true, message: f.message });
    throw e;
  }
  const { run } = live;
  status.runId = run.runId;
  status.backend = run.config.backend;
  status.totalSteps = run.config.trainer.grpo.max_num_steps;
  status.metricName = run.config.trainer.checkpointing.metric_name;
  status.warnings = [...run.warnings];
  status.runDir = run.paths.runDir;
  for (const w of run.warnings) log.warn(w);
  if (input.resume) log.info('resuming run', { runId: run.runId, from: input.resume.executionRunId, endedAs: input.resume.endedAs });
  if (patched('search-attributes')) {
    live.searchAttributes = (await light.registerRunAttributes()).ready;
    label(live, runLabels(run, 'running'));
  }
  t.setStage('validate', 'done');
  return { input, live };
}

export async function trainingRun(rawInput: TrainingRunInput): Promise<Summary> {
  const info = workflowInfo();
  const carry = rawInput && typeof rawInput === 'object' ? (rawInput.carry as Carry | undefined) : undefined;
  const t = new StatusTracker(info.workflowId, Date.now(), carry?.tracker);
  const status = t.status;
  setHandler(statusQuery, () => t.snapshot());
  setHandler(progressSignal, (u: ProgressUpdate) => t.onProgress(u));

  const { input, live } = carry ? { input: validateInput(rawInput), live: carry.live } : await begin(t, rawInput, info.workflowId);
  const cfg = live.run.config;
  const traits = traitsOf(cfg.backend);
  const hb = `${cfg.run.heartbeat_timeout_s} seconds`;
  const setup = proxyActivities<typeof activities>({
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: hb,
    retry: { initialInterval: '5s', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  // Temporal itself retries only lost workers (heartbeat timeouts); every classified failure
  // comes back to `recover`, which applies its policy and budget.
  const workerLostBudget = ((cfg.recovery ?? DEFAULT_RECOVERY) as RecoverySettings).budgets.WorkerLost;
  const heavyRetry = { initialInterval: '5s', maximumInterval: '5 minutes', maximumAttempts: Math.max(cfg.run.max_attempts, workerLostBudget + 1), nonRetryableErrorTypes: NON_RETRYABLE };
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
      const r = await bfclRunner.bfclEvaluate({ run: live.run, env: live.env!, which, modelPath });
      if (r) log.info(`BFCL ${which}`, { overall: r.overall.accuracy, version: r.version });
      if (which !== 'warm') live.bfcl = { baseline: null, final: null, ...live.bfcl, [which]: r };
    } catch (e) {
      if (isCancellation(e)) throw e;
      status.warnings.push(`BFCL ${which} failed: ${failureOf(e, which === 'baseline' ? 'baselineEval' : which === 'warm' ? 'warmStart' : 'finalEval', 1).message.split('\n')[0]}`);
    }
  };
  const recover = makeRecover(t, live, (i) => setup.restartRay(i));
  let finalState: RunState = 'completed';
  let current: StageName = carry ? 'train' : 'prepareEnvironment';
  let pendingError: unknown = null;
  let handOver = false;

  const stage = async <T>(name: StageName, fn: () => Promise<T>, detail?: (r: T) => string): Promise<T> => {
    current = name;
    t.setStage(name, 'running');
    const r = await recover(name, fn);
    t.setStage(name, 'done', detail?.(r));
    return r;
  };

  let book: CheckpointBook | null = null;
  const applyBook = (b: CheckpointBook) => {
    book = b;
    status.checkpoints = b.retained;
    status.best = b.best;
    if (b.newest) status.step = Math.max(status.step, b.newest.step);
    if (b.best?.metric !== null && b.best?.metric !== undefined) label(live, { bestAccuracy: b.best.metric });
    t.touch();
  };

  try {
    if (!carry) {
      const run = live.run;
      live.env = await stage(
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
      const env = live.env;
      const data = (live.data = await stage('prepareData', () => setup.prepareData({ run: live.run, env }), (d) => d.dataDir));
      const model = (live.model = await stage(
        'fetchModel',
        async () => {
          const m = await setup.fetchModel({ run: live.run, env });
          // The run's checkpoints belong to one backend, model and data set: a resume must match them.
          if (patched('run-identity')) await light.checkRunIdentity({ run: live.run, model: m, data });
          return m;
        },
        (m) => `${m.modelDir} (${m.fingerprint})`,
      ));
      live.modelCached = true;
      if (model.warning && !status.warnings.includes(model.warning)) {
        status.warnings.push(model.warning);
        log.warn(model.warning);
      }
      if (cfg.ray.enabled) live.ray = await stage('startRay', () => setup.startRay({ run: live.run, env }), (r) => `RAY_ADDRESS=${r.address}`);
      else t.setStage('startRay', 'skipped', 'ray.enabled=false');
      if (live.ray?.authenticated === false) {
        const w = `the Ray cluster at ${live.ray.address} (ray.address) accepts clients without a token: anyone who can reach it can run code there; enable Ray's token authentication (docs/security.md)`;
        status.warnings.push(w);
        log.warn(w);
      }

      // Resume: a re-started workflow for an existing run dir continues from its newest checkpoint.
      applyBook(await light.bookkeepCheckpoints({ run: live.run }));

      if (cfg.eval.baseline && status.step === 0) {
        status.baseline = await stage(
          'baselineEval',
          () => evaluator.evaluate({ run: live.run, env, data, model, ray: live.ray, which: 'baseline', modelPath: model.modelDir }),
          (r) => (r ? `accuracy ${r.accuracy.toFixed(3)} on ${r.numTasks} tasks` : 'not supported by backend'),
        );
        await runBfcl('baseline', model.modelDir);
      } else t.setStage('baselineEval', 'skipped', cfg.eval.baseline ? 'resumed run (already trained)' : 'eval.baseline=false');

      // Supervised warm start: GRPO starts from its model. A resumed run passes through it too (the
      // trainer reuses the finished warm start), so its checkpoints keep the model they were made from.
      live.policyStart = model;
      const warmEnabled = cfg.trainer.warm_start?.enabled === true;
      // A promoted model went through its own run's warm start already: GRPO goes on from it as it is.
      if (warmEnabled && model.promoted) t.setStage('warmStart', 'skipped', `starting from the promoted model ${model.promoted.runId} step ${model.promoted.step} (init_from: promoted)`);
      else if (warmEnabled && traits.supportsWarmStart && patched('warm-start')) {
        const evalWarm = cfg.eval.baseline && status.step === 0;
        const w = await stage(
          'warmStart',
          async () => {
            const r = await trainer.warmStart({ run: live.run, env, data, model });
            status.warmStart = r;
            if (evalWarm) status.warm = await evaluator.evaluate({ run: live.run, env, data, model, ray: live.ray, which: 'warm', modelPath: r.model.modelDir });
            return r;
          },
          (r) => `${r.reused ? 'reused' : 'trained'} on ${r.traces} traces (${r.steps} steps)${status.warm ? `; accuracy ${status.warm.accuracy.toFixed(3)}` : ''}: ${r.model.modelDir}`,
        );
        if (evalWarm) await runBfcl('warm', w.model.modelDir);
        live.policyStart = w.model;
      } else t.setStage('warmStart', 'skipped', !warmEnabled ? 'trainer.warm_start.enabled is false' : `not supported by backend ${cfg.backend}`);
      current = 'train';
      t.setStage('train', 'running');
    } else {
      applyBook(await light.bookkeepCheckpoints({ run: live.run }));
      log.info('continued as new', { executions: carry.executions, step: status.step });
    }
    const env = live.env!;
    const data = live.data!;
    const model = live.model!;

    const total = cfg.trainer.grpo.max_num_steps;
    const seg = traits.singleLaunch ? total : cfg.run.segment_steps;
    const historyLimit = cfg.run.continue_as_new_after_events ?? CONTINUE_AS_NEW_AFTER_EVENTS;
    let step = book!.newest?.step ?? 0;
    let segments = 0;
    while (step < total) {
      // At least one segment per execution, so a low limit cannot loop without training.
      if (segments > 0 && patched('continue-as-new') && historyIsLarge(historyLimit)) {
        handOver = true;
        break;
      }
      const target = Math.min((Math.floor(step / seg) + 1) * seg, total);
      log.info('training segment', { from: step, to: target });
      const r = await recover('train', () => trainer.trainSegment({ run: live.run, env: live.env ?? env, data, model: live.policyStart ?? model, ray: live.ray, stopAfterStep: target }));
      segments++;
      status.latestTrain = { ...status.latestTrain, ...r.latestTrain };
      status.latestValidation = { ...status.latestValidation, ...r.latestValidation };
      status.attempts.train = Math.max(status.attempts.train ?? 0, r.attempt);
      applyBook(await light.bookkeepCheckpoints({ run: live.run }));
      if (r.step <= step && r.step < target) {
        log.warn('trainer made no progress; stopping', { step: r.step, target });
        break;
      }
      step = r.step;
      status.step = step;
      if (r.finished) break;
    }
    if (!handOver) {
      t.setStage('train', 'done', `step ${status.step}/${total}`);
      const b = book as CheckpointBook | null;
      const target = b?.best ?? b?.newest ?? null;
      if (cfg.eval.final && target) {
        status.final = await stage(
          'finalEval',
          () => evaluator.evaluate({ run: live.run, env, data, model, ray: live.ray, which: 'final', modelPath: target.dir }),
          (r) => (r ? `accuracy ${r.accuracy.toFixed(3)} (step_${target.step})` : 'not supported by backend'),
        );
        await runBfcl('final', target.dir);
      } else t.setStage('finalEval', 'skipped', cfg.eval.final ? 'no checkpoint' : 'eval.final=false');
      current = 'promote';
      if (patched('promotion')) await promoteBest({ t, live, stage, light, heavy: evaluator }, target);
      else t.setStage('promote', 'skipped', 'run started before promotion existed');
    }
  } catch (err) {
    pendingError = err;
    if (isCancellation(err)) {
      finalState = 'cancelled';
      t.setStage(current, 'cancelled');
      log.warn('run cancelled; cleaning up', { stage: current });
    } else {
      finalState = 'failed';
      const f = failureOf(err, current, status.attempts[current] ?? 1);
      if (!status.failures.some((x) => x.stage === f.stage && x.message === f.message)) status.failures.push(f);
      t.setStage(current, 'failed', f.message.split('\n')[0]);
      log.error('run failed', { stage: current, type: f.type });
    }
  }

  if (handOver) {
    // Ray, a paused trainer and the run dir stay as they are: the next execution goes on with them.
    const next: Carry = { tracker: t.carried(), live, executions: (carry?.executions ?? 0) + 1 };
    log.info('continuing as new', { historyLength: info.historyLength, step: status.step, executions: next.executions });
    const continueRun = makeContinueAsNewFunc<typeof trainingRun>({ typedSearchAttributes: workflowInfo().typedSearchAttributes });
    return continueRun({ ...input, carry: next });
  }

  // Summary + cleanup run even when the run was cancelled (non-cancellable scope).
  const summary = await CancellationScope.nonCancellable(async () => {
    const run = live.run;
    t.setStage('summary', 'running');
    status.state = finalState;
    label(live, { state: finalState });
    t.touch();
    const s = summaryOf(status, run, finalState, t.startedMs);
    try {
      const written = await light.writeSummary({ summary: s });
      status.summaryPath = written.text;
      t.setStage('summary', 'done', written.json);
    } catch (e) {
      t.setStage('summary', 'failed', (e as Error).message);
    }
    // The run report (report.md, report.html with plots); it adds the success criteria to the summary files.
    if (status.summaryPath && patched('run-report')) {
      try {
        const r = await light.writeReport({ run, env: live.env });
        t.setStage('summary', 'done', `${status.stages.find((x) => x.name === 'summary')?.detail ?? ''}; report ${r.html}`);
      } catch (e) {
        status.warnings.push(`report not written: ${(e as Error).message}`);
      }
    }
    t.setStage('cleanup', 'running');
    try {
      const c = await light.cleanupRun({ run });
      t.setStage('cleanup', 'done', `${c.rayStopped ? 'stopped Ray' : 'no Ray to stop'}${c.trainerStopped ? '; stopped orphan trainer' : ''}`);
    } catch (e) {
      t.setStage('cleanup', 'failed', (e as Error).message);
    }
    return s;
  });
  if (pendingError) throw pendingError;
  return summary;
}
