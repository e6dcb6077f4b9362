/**
 * Activities of the `trainingRun` workflow. Each is idempotent: re-running it after a crash or a
 * retry converges on the same result (fingerprints, marker files, newest-checkpoint resume).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfigFile, validateConfig } from '../config/load.js';
import { getBackend, type CommandSpec } from '../backends/index.js';
import { runPaths, stateDir } from '../common/state.js';
import {
  RUN_ID_PATTERN,
  type CheckpointBook,
  type DataInfo,
  type EnvInfo,
  type EvalResult,
  type FailureDetails,
  type Metrics,
  type ModelInfo,
  type RayInfo,
  type ResolvedRun,
  type SegmentResult,
  type StageName,
  type Summary,
  type TrainingRunInput,
} from '../common/types.js';
import { redact } from '../common/redact.js';
import { FileFollower, groupAlive, killGroup, oomKillCount, spawnToLog, tailFile, type Spawned } from './proc.js';
import { classifyFailure, FATAL_TYPES } from '../failures/classifier.js';
import { CheckpointLock, LockBusyError, stopOrphanTrainer } from './lock.js';
import { continueTrainer, handoffFor, isPausedAt, liveTrainer, pausedFile, registerTrainer, resetHandoff, stopPausedTrainers } from './handoff.js';
import { bookkeep, listCheckpoints } from './checkpoints.js';
import { attempt, cancellationSignal, currentContext, heartbeat, log, reportProgress, throwIfCancelled } from './context.js';
import { renderSummaryText } from './summary.js';
import { backendCtx, confirmCancel } from './support.js';
import { stopRay } from './ray.js';

/** Failure types that a retry cannot fix. */
export const NON_RETRYABLE_TYPES = [...FATAL_TYPES];


// ---------------------------------------------------------------------------------------------
// Running commands with heartbeats and group-kill on cancellation

export interface TrackedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  cancelled: boolean;
  tail: string;
  /** `until` held: the process was left running (a trainer paused for the next segment). */
  detached: boolean;
}

export interface TrackOptions {
  extraEnv?: Record<string, string>;
  tickMs?: number;
  onTick?: () => Promise<unknown> | unknown;
  /** Polled every 100 ms: once true, return and leave the process running. */
  until?: () => boolean;
}

/**
 * Run a command in its own process group, heartbeating every `tickMs` (with `onTick`'s details),
 * and kill the whole group when the activity is cancelled.
 */
export async function runTracked(spec: CommandSpec, logFile: string, opts: TrackOptions = {}): Promise<TrackedResult> {
  throwIfCancelled();
  const child = spawnToLog(spec, logFile, opts.extraEnv, `${spec.label}: ${spec.argv.join(' ')}`);
  return trackProcess(child, spec.label, logFile, opts);
}

/** Follow a running process group (spawned now or by an earlier segment): heartbeats, cancellation, exit. */
export async function trackProcess(child: Spawned, label: string, logFile: string, opts: TrackOptions = {}): Promise<TrackedResult> {
  const signal = cancellationSignal();
  let cancelled = false;
  const onAbort = () => {
    cancelled = true;
    log('warn', `cancelling: stopping process group ${child.pid} (${label})`);
    void killGroup(child.pid);
  };
  signal?.addEventListener('abort', onAbort);
  if (signal?.aborted) onAbort();
  // Heartbeats come from their own timer with the latest details, never waiting on slow work
  // (metrics parsing, progress signals), so a loaded machine does not cause heartbeat timeouts.
  let details: unknown = { label, pid: child.pid };
  let ticking = false;
  const tick = async () => {
    if (ticking) return;
    ticking = true;
    try {
      if (opts.onTick) details = (await opts.onTick()) ?? details;
    } catch (e) {
      log('debug', 'tick failed', { error: (e as Error).message });
    } finally {
      ticking = false;
    }
  };
  const hbTimer = setInterval(() => heartbeat(details), 1000);
  const timer = setInterval(() => void tick(), opts.tickMs ?? 2000);
  let untilTimer: NodeJS.Timeout | undefined;
  const reached = new Promise<'until'>((resolve) => {
    if (!opts.until) return;
    untilTimer = setInterval(() => {
      if (!cancelled && opts.until!()) resolve('until');
    }, 100);
  });
  try {
    const outcome = await Promise.race([child.exit, reached]);
    if (outcome === 'until') {
      await tick();
      heartbeat(details);
      return { code: null, signal: null, cancelled: false, tail: '', detached: true };
    }
    const { code, signal: sig } = outcome;
    // The group may still hold grandchildren (e.g. Ray workers): end them too.
    if (child.pid > 0 && groupAlive(child.pid)) await killGroup(child.pid, 5000);
    await tick();
    heartbeat(details);
    return { code, signal: sig, cancelled: cancelled || !!signal?.aborted, tail: await tailFile(logFile, 3000), detached: false };
  } finally {
    clearInterval(timer);
    clearInterval(hbTimer);
    clearInterval(untilTimer);
    signal?.removeEventListener('abort', onAbort);
  }
}


// ---------------------------------------------------------------------------------------------
// resolveRun

export interface ResolveRunInput extends TrainingRunInput {
  workflowId: string;
}

/** Load + validate the config (path or inline), create the run dir and write the trainer YAML. */
export async function resolveRun(input: ResolveRunInput): Promise<ResolvedRun> {
  const runId = input.runId ?? input.workflowId;
  if (!RUN_ID_PATTERN.test(runId))
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: `runId: expected letters, digits, '.', '_' or '-' (max 100), got ${JSON.stringify(runId)}` });
  let loaded;
  try {
    loaded = input.configPath !== undefined ? loadConfigFile(input.configPath, input.set ?? []) : validateConfig(input.config, input.set ?? []);
  } catch (e) {
    if (e instanceof ConfigError) throw ApplicationFailure.create({ type: 'InvalidConfig', nonRetryable: true, message: e.message, details: [e.problems] });
    throw e;
  }
  const state = stateDir(loaded.config.state_dir);
  const paths = runPaths(state, runId);
  for (const d of [paths.runDir, paths.checkpointDir, paths.logDir, paths.evalDir]) await mkdir(d, { recursive: true });
  await writeFile(paths.trainerConfig, toYaml(loaded.config.trainer));
  await writeFile(join(paths.runDir, 'config.resolved.yaml'), toYaml(loaded.config));
  return {
    runId,
    config: loaded.config,
    warnings: loaded.warnings,
    paths,
    configSource: input.configPath !== undefined ? (loaded.source ?? input.configPath) : (input.source ?? 'inline'),
  };
}

// ---------------------------------------------------------------------------------------------
// prepareEnvironment

interface EnvMarker {
  fingerprint: string;
  builtAt: string;
  /** NeMo RL: the first launch after a rebuild must set NRL_FORCE_REBUILD_VENVS=true. */
  nrlForceRebuildPending: boolean;
}

export async function envFingerprint(lockFiles: string[], extra: string): Promise<string> {
  const h = createHash('sha256');
  h.update(extra);
  for (const f of lockFiles) {
    h.update('\0' + f.split('/').slice(-2).join('/') + '\0');
    h.update(existsSync(f) ? await readFile(f) : 'missing');
  }
  return h.digest('hex').slice(0, 16);
}

/** Build (or reuse) the trainer environment from its lock files. */
export async function prepareEnvironment(input: { run: ResolvedRun; force?: boolean }): Promise<EnvInfo> {
  const { run } = input;
  const backend = getBackend(run.config.backend);
  const spec = backend.environment(backendCtx(run));
  for (const f of spec.lockFiles)
    if (!existsSync(f))
      throw ApplicationFailure.create({
        type: 'BackendUnavailable',
        nonRetryable: true,
        message:
          run.config.backend === 'nemo_rl'
            ? `NeMo RL checkout not found (${f} missing): set nemo_rl.repo_dir to a NeMo RL checkout; running it also needs GPUs (see grpo plan)`
            : `lock file ${f} is missing`,
      });
  const fingerprint = await envFingerprint(spec.lockFiles, spec.fingerprintExtra);
  const markerPath = spec.kind === 'venv' ? join(spec.dir, '.grpo-env.json') : join(run.paths.stateDir, 'envs', `${backend.name}.json`);
  const marker = existsSync(markerPath) ? (JSON.parse(await readFile(markerPath, 'utf8')) as EnvMarker) : null;
  const force = !!input.force || run.config.environment.force_rebuild;
  if (!force && marker?.fingerprint === fingerprint && existsSync(spec.python)) {
    log('info', 'trainer environment up to date', { dir: spec.dir, fingerprint });
    return { envDir: spec.dir, python: spec.python, fingerprint, rebuilt: false, nrlForceRebuildVenvs: marker.nrlForceRebuildPending };
  }
  // Exclusive build: one builder per env dir.
  const lockDir = join(run.paths.stateDir, 'envs', `.${backend.name}-build`);
  const lock = await CheckpointLock.acquire(lockDir, run.runId, 'prepareEnvironment').catch((e) => {
    if (e instanceof LockBusyError) throw ApplicationFailure.create({ type: 'EnvironmentBusy', message: `${e.message} (another run is building this environment; retrying)`, nextRetryDelay: '20s' });
    throw e;
  });
  try {
    log('info', 'building trainer environment', { dir: spec.dir, fingerprint, force });
    if (spec.kind === 'venv') await rm(spec.dir, { recursive: true, force: true });
    const logFile = join(run.paths.stateDir, 'envs', `${backend.name}-build.log`);
    for (const step of spec.build) {
      const r = await runTracked(step, logFile, { tickMs: 5000, onTick: () => ({ stage: 'prepareEnvironment', step: step.label }) });
      if (r.cancelled) confirmCancel();
      if (r.code !== 0)
        throw ApplicationFailure.create({ type: 'EnvironmentBuildFailed', message: `${step.label} failed (exit ${r.code}); see ${logFile}\n${r.tail.slice(-1500)}` });
    }
    const m: EnvMarker = { fingerprint, builtAt: new Date().toISOString(), nrlForceRebuildPending: true };
    await mkdir(join(markerPath, '..'), { recursive: true });
    await writeFile(markerPath, JSON.stringify(m, null, 2));
    return { envDir: spec.dir, python: spec.python, fingerprint, rebuilt: true, nrlForceRebuildVenvs: true };
  } finally {
    await lock.release();
  }
}

/** Mark that the first launch after a rebuild happened (NRL_FORCE_REBUILD_VENVS only once). */
async function consumeForceRebuild(run: ResolvedRun, env: EnvInfo): Promise<void> {
  const backend = getBackend(run.config.backend);
  const spec = backend.environment(backendCtx(run));
  const markerPath = spec.kind === 'venv' ? join(spec.dir, '.grpo-env.json') : join(run.paths.stateDir, 'envs', `${backend.name}.json`);
  if (!env.nrlForceRebuildVenvs || !existsSync(markerPath)) return;
  const m = JSON.parse(await readFile(markerPath, 'utf8')) as EnvMarker;
  if (m.nrlForceRebuildPending) await writeFile(markerPath, JSON.stringify({ ...m, nrlForceRebuildPending: false }, null, 2));
}

// ---------------------------------------------------------------------------------------------
// checkTrainerConfig, prepareData, fetchModel

async function runSimple(run: ResolvedRun, spec: CommandSpec, logName: string, stage: StageName, timeoutNote = ''): Promise<TrackedResult> {
  const r = await runTracked(spec, join(run.paths.logDir, logName), { tickMs: 3000, onTick: () => ({ stage, label: spec.label }) });
  if (r.cancelled) confirmCancel();
  void timeoutNote;
  return r;
}

interface FailureContext {
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
async function failureFromTrainer(run: ResolvedRun, stage: StageName, r: TrackedResult, label: string, fc: FailureContext = {}): Promise<never> {
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
      : `${label} exited with ${how}: ${c.type} (classifier rule ${c.rule})${report ? `: ${report.message}` : ''}\n${r.tail.slice(-1500)}`,
  );
  await reportProgress({ stage, attempt: attempt(), failure: { type: c.type, message, step: details.step } }, { force: true });
  throw ApplicationFailure.create({ type: c.type, message, nonRetryable: true, details: [details] });
}

/** Run the trainer's own config check (exit 2 → non-retryable InvalidConfig naming the key). */
export async function checkTrainerConfig(input: { run: ResolvedRun; env: EnvInfo }): Promise<{ ok: boolean; skipped: boolean }> {
  const { run, env } = input;
  const spec = getBackend(run.config.backend).checkConfig(backendCtx(run, { env }));
  if (!spec) return { ok: true, skipped: true };
  const r = await runSimple(run, spec, 'check-config.log', 'prepareEnvironment');
  if (r.code === 0) return { ok: true, skipped: false };
  if (r.code === 2) {
    const lines = r.tail.trim().split('\n').filter((l) => l.trim() && !l.startsWith('====='));
    const why = lines.filter((l) => /invalid config|error/i.test(l)).at(-1) ?? lines.at(-1) ?? '';
    throw ApplicationFailure.create({ type: 'InvalidConfig', nonRetryable: true, message: `the trainer's check-config rejected the trainer section: ${why.replace(/^invalid config:\s*/, 'trainer.')}` });
  }
  throw ApplicationFailure.create({ type: 'TrainerCrashed', message: `check-config exited with code ${r.code}\n${r.tail.slice(-1500)}` });
}

export async function prepareData(input: { run: ResolvedRun; env: EnvInfo }): Promise<DataInfo> {
  const { run, env } = input;
  const d = getBackend(run.config.backend).data(backendCtx(run, { env }));
  const info: DataInfo = { dataDir: d.dir, train: d.train, validation: d.validation, manifest: d.manifest };
  if (!d.command) return info;
  if (existsSync(d.manifest) && existsSync(d.train) && existsSync(d.validation)) return info;
  await mkdir(d.dir, { recursive: true });
  const r = await runSimple(run, d.command, 'prepare-data.log', 'prepareData');
  if (r.code !== 0) await failureFromTrainer(run, 'prepareData', r, 'prepare-data', { failurePath: join(d.dir, 'failure.json') });
  return info;
}

/** Convert / download the model into the state dir's model cache (HF token from the worker env). */
export async function fetchModel(input: { run: ResolvedRun; env: EnvInfo }): Promise<ModelInfo> {
  const { run, env } = input;
  const m = getBackend(run.config.backend).model(backendCtx(run, { env }));
  if (!m.command) return { modelDir: m.dir, fingerprint: 'external' };
  await mkdir(join(m.dir, '..'), { recursive: true });
  const modelFailure = join(m.dir, '..', 'failure.json');
  await rm(modelFailure, { force: true });
  const logFile = join(run.paths.logDir, 'fetch-model.log');
  const r = await runTracked(m.command, logFile, { tickMs: 3000, onTick: () => ({ stage: 'fetchModel', modelDir: m.dir }) });
  if (r.cancelled) confirmCancel();
  if (r.code !== 0) await failureFromTrainer(run, 'fetchModel', r, 'prepare-model', { failurePath: modelFailure, modelCached: existsSync(join(m.dir, 'config.json')) });
  const lastJson = r.tail
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  let fingerprint = 'unknown';
  let modelDir = m.dir;
  if (lastJson) {
    try {
      const o = JSON.parse(lastJson) as { model_dir?: string; fingerprint?: string };
      if (o.fingerprint) fingerprint = o.fingerprint;
      if (o.model_dir) modelDir = resolve(o.model_dir);
    } catch {
      /* keep defaults */
    }
  }
  return { modelDir, fingerprint };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export async function evaluate(input: { run: ResolvedRun; env: EnvInfo; data: DataInfo; model: ModelInfo; ray: RayInfo | null; which: 'baseline' | 'final'; modelPath: string }): Promise<EvalResult | null> {
  const { run, env, data, model, ray } = input;
  const backend = getBackend(run.config.backend);
  const outPath = join(run.paths.evalDir, `${input.which}.json`);
  const spec = backend.evaluate(backendCtx(run, { env, data, model, ray }), input.modelPath, outPath);
  if (!spec) return null;
  const stage: StageName = input.which === 'baseline' ? 'baselineEval' : 'finalEval';
  await reportProgress({ stage, attempt: attempt() }, { force: true });
  await rm(outPath, { force: true });
  await rm(join(run.paths.evalDir, 'failure.json'), { force: true });
  const r = await runTracked(spec, join(run.paths.logDir, `eval-${input.which}.log`), { tickMs: 3000, onTick: () => ({ stage, model: input.modelPath }) });
  if (r.cancelled) confirmCancel();
  if (r.code !== 0 || !existsSync(outPath)) await failureFromTrainer(run, stage, r, `evaluate (${input.which})`, { failurePath: join(run.paths.evalDir, 'failure.json') });
  const o = JSON.parse(await readFile(outPath, 'utf8')) as { accuracy: number; per_category?: Record<string, number>; num_tasks?: number };
  return { accuracy: o.accuracy, perCategory: o.per_category ?? {}, numTasks: o.num_tasks ?? 0, outPath, model: input.modelPath };
}

// ---------------------------------------------------------------------------------------------
// Training segment

export interface TrainSegmentInput {
  run: ResolvedRun;
  env: EnvInfo;
  data: DataInfo;
  model: ModelInfo;
  ray: RayInfo | null;
  stopAfterStep: number;
}

/**
 * Train until global step `stopAfterStep` (the trainer saves a checkpoint there). A retried
 * attempt resumes from the newest complete checkpoint (the trainer does this on its own). With
 * segment handoff (run.segment_handoff_timeout_s > 0) the trainer of the previous segment, paused
 * at that checkpoint in this worker, goes on in the same process instead (src/activities/handoff.ts).
 */
export async function trainSegment(input: TrainSegmentInput): Promise<SegmentResult> {
  const { run, env, data, model, ray, stopAfterStep } = input;
  const backend = getBackend(run.config.backend);
  const metricName = run.config.trainer.checkpointing.metric_name;
  const n = attempt();
  // A lock held from another host whose lease was not renewed for 3 heartbeat timeouts is a lost host's.
  const staleAfterMs = 3 * run.config.run.heartbeat_timeout_s * 1000;
  const lock = await CheckpointLock.acquire(run.paths.checkpointDir, run.runId, `trainSegment→${stopAfterStep} attempt ${n}`, { staleAfterMs }).catch((e) => {
    if (e instanceof LockBusyError) throw ApplicationFailure.create({ type: 'CheckpointDirLocked', message: e.message, nextRetryDelay: '15s' });
    throw e;
  });
  let trainerPaused = false;
  try {
    const before = await listCheckpoints(run.paths.checkpointDir, metricName);
    const startStep = before.complete.at(-1)?.step ?? 0;
    await ledgerLostAttempt(n, lock, startStep);
    const latestTrain: Metrics = {};
    const latestValidation: Metrics = {};
    let step = startStep;
    // Catch up on metrics already written (resume) so status shows them at once.
    const follower = new FileFollower(backend.metricsFile(run.paths));
    const consume = (lines: string[]) => {
      for (const line of lines) {
        const rec = backend.parseMetricsLine(line);
        if (!rec) continue;
        if (rec.kind === 'train') {
          Object.assign(latestTrain, rec.metrics);
          step = Math.max(step, rec.step);
        } else Object.assign(latestValidation, rec.metrics);
      }
    };
    consume(await follower.readNewLines());
    step = startStep; // metrics logged after the newest checkpoint are redone by the resumed trainer
    if (startStep >= stopAfterStep) {
      trainerPaused = liveTrainer(run.paths.checkpointDir) !== null;
      return { step: startStep, finished: false, latestTrain, latestValidation, attempt: n };
    }
    const handoff = handoffFor(run.config, run.paths.runDir);
    const ctx = backendCtx(run, { env, data, model, ray });
    const limitMb = run.config.run.trainer_address_space_mb;
    const spec = withAddressSpaceLimit(backend.launch(ctx, stopAfterStep, handoff), limitMb);
    // What must match for a paused trainer to serve this segment: the whole command but its end step.
    const launchKey = JSON.stringify(withAddressSpaceLimit(backend.launch(ctx, 0, handoff), limitMb));
    const logFile = join(run.paths.logDir, 'trainer.log');
    const oomKillsBefore = oomKillCount();
    const startedAtMs = Date.now();
    let running: { atMs: number; fromStep: number; launchedAtMs: number } | null = null;

    let trainer = handoff ? liveTrainer(run.paths.checkpointDir) : null;
    if (trainer) {
      const usable = trainer.launchKey === launchKey && isPausedAt(trainer, startStep) && (await continueTrainer(trainer, startStep, stopAfterStep));
      if (usable) {
        log('info', 'continuing the paused trainer in the same process', { pid: trainer.child.pid, from: startStep, to: stopAfterStep });
        running = { atMs: Date.now(), fromStep: startStep, launchedAtMs: startedAtMs };
      } else {
        log('info', 'the trainer left by the previous segment cannot serve this one; starting a fresh one', { pid: trainer.child.pid });
        await killGroup(trainer.child.pid);
        trainer = null;
      }
    }
    if (!trainer) {
      // A trainer of this checkpoint dir that this worker cannot continue (a paused one left by a
      // dead worker, say) goes first: two trainers never share a checkpoint dir.
      if (await stopOrphanTrainer(run.paths.checkpointDir)) log('warn', 'stopped a trainer left running for this checkpoint dir');
      // We hold the lock and no trainer of ours runs: a tmp_step_N left now is a dead write.
      for (const name of before.inProgress) {
        log('warn', 'removing an incomplete checkpoint write left by a failed attempt', { dir: name });
        await rm(join(run.paths.checkpointDir, name), { recursive: true, force: true });
      }
      if (handoff) {
        await resetHandoff(handoff.dir);
        const evicted = await stopPausedTrainers(run.paths.checkpointDir);
        if (evicted) log('info', 'stopped paused trainers of other runs to free their memory', { count: evicted });
      }
    }
    const failurePath = backend.failureFile(run.paths);
    if (existsSync(failurePath)) await rename(failurePath, `${failurePath}.${Date.now()}.prev`);
    await reportProgress({ stage: 'train', attempt: n, step, train: latestTrain, validation: latestValidation }, { force: true });
    if (running) await reportProgress({ stage: 'train', attempt: n, running }, { force: true });
    const logFollower = new FileFollower(logFile);
    await logFollower.skipToEnd();
    let child: Spawned;
    if (trainer) child = trainer.child;
    else {
      throwIfCancelled();
      child = spawnToLog(spec, logFile, {}, `${spec.label}: ${spec.argv.join(' ')}`);
      if (handoff) trainer = registerTrainer({ runId: run.runId, checkpointDir: run.paths.checkpointDir, handoffDir: handoff.dir, launchKey, child });
      if (child.pid > 0) await lock.writeTrainerPid(child.pid);
      await consumeForceRebuild(run, env);
    }
    const r = await trackProcess(child, spec.label, logFile, {
      tickMs: 2000,
      until: handoff ? () => existsSync(pausedFile(handoff.dir, stopAfterStep)) : undefined,
      onTick: async () => {
        await lock.renew();
        consume(await follower.readNewLines());
        if (!running) {
          for (const line of await logFollower.readNewLines()) {
            const m = RUNNING_MARK.exec(line);
            if (m) {
              running = { atMs: Date.now(), fromStep: Number(m[1]), launchedAtMs: startedAtMs };
              await reportProgress({ stage: 'train', attempt: n, running }, { force: true });
              break;
            }
          }
        }
        void reportProgress({ stage: 'train', attempt: n, step, train: { ...latestTrain }, validation: { ...latestValidation } });
        return { stage: 'train', step, stopAfterStep, atMs: Date.now(), checkpointStep: startStep, train: { ...latestTrain }, validation: { ...latestValidation } };
      },
    });
    trainerPaused = r.detached;
    if (trainer) trainer.pausedAt = r.detached ? stopAfterStep : null;
    if (!trainerPaused) await lock.clearTrainerPid();
    consume(await follower.readNewLines());
    if (r.cancelled) confirmCancel();
    if (!r.detached && r.code !== 0)
      await failureFromTrainer(run, 'train', r, `training segment to step ${stopAfterStep}`, {
        oomKillsBefore,
        step,
        startedAtMs: (running as { atMs: number } | null)?.atMs ?? startedAtMs,
      });
    const after = await listCheckpoints(run.paths.checkpointDir, metricName);
    const newest = after.complete.at(-1)?.step ?? step;
    const finalStep = Math.max(newest, step);
    await reportProgress({ stage: 'train', attempt: n, step: finalStep, train: latestTrain, validation: latestValidation }, { force: true });
    return { step: finalStep, finished: !r.detached && finalStep < stopAfterStep, latestTrain, latestValidation, attempt: n };
  } finally {
    // A paused trainer keeps its pid file: cleanup and the next segment find it there.
    if (!trainerPaused) await lock.clearTrainerPid().catch(() => undefined);
    await lock.release();
  }
}

/** Printed by the built-in trainer once the model is loaded and training is under way. */
const RUNNING_MARK = /\[grpo\] training running from step (\d+)/;

/** Run the trainer under RLIMIT_AS (MiB) so a runaway allocation fails as a classified OutOfMemory. */
export function withAddressSpaceLimit(spec: CommandSpec, mb: number | null): CommandSpec {
  if (!mb) return spec;
  return { ...spec, argv: ['bash', '-c', 'ulimit -v "$0" && exec "$@"', String(mb * 1024), ...spec.argv] };
}

/**
 * A retried attempt of trainSegment that follows a lost one (worker crash, host loss: Temporal
 * retried after the heartbeat timeout) records the loss, using the last heartbeat of that attempt.
 */
async function ledgerLostAttempt(n: number, lock: CheckpointLock, checkpointStep: number): Promise<void> {
  if (n <= 1) return;
  const prev = currentContext()?.info.heartbeatDetails as { step?: number; atMs?: number; checkpointStep?: number } | undefined;
  if (!prev || typeof prev.atMs !== 'number') return;
  const stopped = lock.tookOver?.trainerStopped ? `; first stopped the trainer orphaned by the dead worker (pid ${lock.tookOver.from?.pid ?? '?'})` : '';
  await reportProgress(
    {
      stage: 'train',
      attempt: n,
      lostAttempt: {
        failedAtMs: prev.atMs,
        stepAtFailure: typeof prev.step === 'number' ? prev.step : null,
        checkpointStep,
        workSinceMs: null,
        action: `Temporal retried the activity after its heartbeat timed out (worker lost)${lock.tookOver ? '; took over the stale checkpoint lock' : ''}${stopped}`,
      },
    },
    { force: true },
  );
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping, summary, cleanup

export async function bookkeepCheckpoints(input: { run: ResolvedRun }): Promise<CheckpointBook> {
  const c = input.run.config.trainer.checkpointing;
  const rule = { metricName: c.metric_name, higherIsBetter: c.higher_is_better, keepTopK: c.keep_top_k };
  let lock: CheckpointLock | null = null;
  try {
    lock = await CheckpointLock.acquire(input.run.paths.checkpointDir, input.run.runId, 'bookkeepCheckpoints');
  } catch (e) {
    if (!(e instanceof LockBusyError)) throw e;
  }
  try {
    // Only delete while holding the lock (no trainer is writing); otherwise just report.
    return await bookkeep(input.run.paths.checkpointDir, rule, { dryRun: lock === null });
  } finally {
    await lock?.release();
  }
}

export async function writeSummary(input: { summary: Summary }): Promise<{ json: string; text: string }> {
  const s = input.summary;
  const json = join(s.runDir, 'summary.json');
  const text = join(s.runDir, 'summary.txt');
  await mkdir(s.runDir, { recursive: true });
  await writeFile(json, redact(JSON.stringify(s, null, 2)) + '\n');
  await writeFile(text, redact(renderSummaryText(s)));
  return { json, text };
}

/** End everything this run started: an orphaned trainer group and the Ray head. */
export async function cleanupRun(input: { run: ResolvedRun }): Promise<{ rayStopped: boolean; trainerStopped: boolean }> {
  const trainerStopped = await stopOrphanTrainer(input.run.paths.checkpointDir).catch(() => false);
  const { stopped } = await stopRay(input);
  return { rayStopped: stopped, trainerStopped };
}

// Run report and BFCL v3 (their own modules).
export { writeReport } from './report.js';
export { bfclEvaluate } from './bfcl.js';
export { startRay, restartRay } from './ray.js';
