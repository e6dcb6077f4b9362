/**
 * The train stage, one activity per segment: train until a global step (the trainer saves a
 * checkpoint there), heartbeating the step and the latest metrics. A retried attempt resumes from
 * the newest complete checkpoint; with segment handoff the previous segment's trainer, paused in
 * this worker, goes on in the same process (src/process/handoff.ts).
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { parseTrainerEvent, trainerEventsFile } from '../backends/events.js';
import { getBackend, type BackendContext, type CommandSpec, type SegmentHandoff } from '../backends/index.js';
import { listCheckpoints } from '../checkpoints/reader.js';
import { attempt, confirmCancel, currentContext, log, reportProgress, throwIfCancelled } from '../common/activity-context.js';
import { runCommand } from '../common/exec.js';
import type { DataInfo, EnvInfo, FailureDetails, ModelInfo, RayInfo, ResolvedRun, SegmentResult } from '../common/types.js';
import { consumeForceRebuild } from '../environment/trainer.js';
import { continueTrainer, handoffFor, isPausedAt, liveTrainer, pausedFile, registerTrainer, resetHandoff, stopPausedTrainers, type LiveTrainer } from '../process/handoff.js';
import { CheckpointLock, LockBusyError, stopOrphanTrainer } from '../process/lock.js';
import { FileFollower, killGroup, oomKillCount, spawnToLog, type Spawned } from '../process/proc.js';
import { MetricsRefresher, MetricsView, SilenceWatch } from '../process/progress.js';
import { trackProcess } from '../process/supervise.js';
import { startOrAttach } from '../slurm/follow.js';
import { SbatchError } from '../slurm/job.js';
import { failureFromTrainer } from './failure.js';
import { backendCtx } from './support.js';

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
 * at that checkpoint in this worker, goes on in the same process instead (src/process/handoff.ts).
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
    const metrics = new MetricsView(backend.metricsFile(run.paths), backend.parseMetricsLine, startStep);
    await metrics.catchUp();
    if (startStep >= stopAfterStep) {
      trainerPaused = liveTrainer(run.paths.checkpointDir) !== null;
      return { step: startStep, finished: false, latestTrain: metrics.train, latestValidation: metrics.validation, attempt: n };
    }
    const ctx = backendCtx(run, { env, data, model, ray });
    const startedAtMs = Date.now();
    const oomKillsBefore = oomKillCount();
    const failurePath = backend.failureFile(run.paths);
    if (existsSync(failurePath)) await rename(failurePath, `${failurePath}.${Date.now()}.prev`);
    await reportProgress({ stage: 'train', attempt: n, step: startStep, train: metrics.train, validation: metrics.validation }, { force: true });
    // The trainer says when it is under way (model loaded, training): that ends a recovery's clock.
    const events = new FileFollower(trainerEventsFile(run.paths.logDir));
    await events.skipToEnd();
    const t = backend.launcher?.(run.config) === 'slurm' ? await slurmTrainer(ctx) : await localTrainer(ctx, run.runId, lock, before, stopAfterStep);
    let running: { atMs: number; fromStep: number; launchedAtMs: number } | null = t.continued ? { atMs: Date.now(), fromStep: startStep, launchedAtMs: startedAtMs } : null;
    if (running) await reportProgress({ stage: 'train', attempt: n, running }, { force: true });
    const driver = new FileFollower(t.driverLog);
    if (t.fresh) await driver.skipToEnd();
    let totalSteps: number | null = null;
    const silence = new SilenceWatch(t.driverLog, run.config.run.hang_timeout_min);
    let hung = false;
    const markRunning = async (fromStep: number) => {
      if (running) return;
      running = { atMs: Date.now(), fromStep, launchedAtMs: startedAtMs };
      await reportProgress({ stage: 'train', attempt: n, running }, { force: true });
      // The launch got as far as training: a forced rebuild of NeMo RL's actor venvs has happened.
      await consumeForceRebuild(ctx, env);
    };
    const refresher = new MetricsRefresher(ctx, backend, run.paths.stateDir, env);
    let lastSignalled = JSON.stringify([startStep, metrics.train, metrics.validation]);
    const r = await trackProcess(t.child, t.label, t.driverLog, {
      tickMs: 2000,
      // What a retried attempt needs to ledger this one if the worker dies before the first tick.
      initialDetails: { stage: 'train', step: startStep, stopAfterStep, atMs: Date.now(), checkpointStep: startStep, train: {}, validation: {} },
      until: t.handoff ? () => existsSync(pausedFile(t.handoff!.dir, stopAfterStep)) : undefined,
      onTick: async () => {
        await lock.renew();
        if (await refresher.due()) await metrics.reload();
        else await metrics.follow();
        for (const line of await events.readNewLines()) {
          const e = parseTrainerEvent(line);
          if (e?.event === 'running') await markRunning(e.step);
        }
        for (const line of backend.parseDriverLine ? await driver.readNewLines() : []) {
          const p = backend.parseDriverLine!(line);
          if (p?.running) await markRunning(p.step ?? startStep);
          if (p?.step !== undefined) metrics.reached(p.step);
          if (p?.total && p.total !== totalSteps) {
            totalSteps = p.total;
            await reportProgress({ stage: 'train', attempt: n, totalSteps }, { force: true });
          }
        }
        if (!hung && silence.expired()) {
          hung = true;
          log('warn', `the trainer printed nothing for ${run.config.run.hang_timeout_min} min: treating it as hung and stopping it`, { log: t.driverLog });
          void (t.child.cancel ? t.child.cancel() : killGroup(t.child.pid));
        }
        // Only a change reaches the workflow (each signal is a history event); liveness is the heartbeat below.
        const seen = JSON.stringify([metrics.step, metrics.train, metrics.validation]);
        if (seen !== lastSignalled) {
          lastSignalled = seen;
          void reportProgress({ stage: 'train', attempt: n, step: metrics.step, train: { ...metrics.train }, validation: { ...metrics.validation } }, { minIntervalMs: 0 });
        }
        return { stage: 'train', step: metrics.step, stopAfterStep, atMs: Date.now(), checkpointStep: startStep, train: { ...metrics.train }, validation: { ...metrics.validation } };
      },
    });
    trainerPaused = r.detached;
    if (t.trainer) t.trainer.pausedAt = r.detached ? stopAfterStep : null;
    if (!trainerPaused) await lock.clearTrainerPid();
    if (await refresher.due(true)) await metrics.reload();
    else await metrics.follow();
    if (r.cancelled) confirmCancel();
    const workSinceMs = (running as { atMs: number } | null)?.atMs ?? startedAtMs;
    if (hung) throw await hungFailure(run, metrics.step, workSinceMs, run.config.run.hang_timeout_min!);
    if (!r.detached && r.code !== 0)
      await failureFromTrainer(run, 'train', r, `training segment to step ${stopAfterStep}`, { oomKillsBefore, step: metrics.step, startedAtMs: workSinceMs });
    const after = await listCheckpoints(run.paths.checkpointDir, metricName);
    const finalStep = Math.max(after.complete.at(-1)?.step ?? metrics.step, metrics.step);
    await reportProgress({ stage: 'train', attempt: n, step: finalStep, train: metrics.train, validation: metrics.validation }, { force: true });
    return { step: finalStep, finished: !r.detached && finalStep < stopAfterStep, latestTrain: metrics.train, latestValidation: metrics.validation, attempt: n };
  } finally {
    // A paused trainer keeps its pid file: cleanup and the next segment find it there.
    if (!trainerPaused) await lock.clearTrainerPid().catch(() => undefined);
    await lock.release();
  }
}

interface StartedTrainer {
  child: Spawned;
  label: string;
  /** Where the trainer's stdout goes (the local trainer.log, or ray.sub's ray-driver.log). */
  driverLog: string;
  /** A new launch (its log is followed from now), or a trainer/job found running (followed from the start of its log). */
  fresh: boolean;
  /** The previous segment's trainer went on in the same process (training already under way). */
  continued: boolean;
  trainer: LiveTrainer | null;
  handoff?: SegmentHandoff;
}

/**
 * A local trainer for this segment: the previous segment's, paused in this worker (segment
 * handoff), or a fresh one after anything left behind was stopped.
 */
async function localTrainer(ctx: BackendContext, runId: string, lock: CheckpointLock, before: { inProgress: string[] }, stopAfterStep: number): Promise<StartedTrainer> {
  const { config, paths } = ctx;
  const backend = getBackend(config.backend);
  const handoff = handoffFor(config, paths.runDir);
  const limitMb = config.run.trainer_address_space_mb;
  const spec = withAddressSpaceLimit(backend.launch(ctx, stopAfterStep, handoff), limitMb);
  // What must match for a paused trainer to serve this segment: the whole command but its end step.
  const launchKey = JSON.stringify(withAddressSpaceLimit(backend.launch(ctx, 0, handoff), limitMb));
  const logFile = join(paths.logDir, 'trainer.log');
  let trainer = handoff ? liveTrainer(paths.checkpointDir) : null;
  if (trainer) {
    const from = (await listCheckpoints(paths.checkpointDir, config.trainer.checkpointing.metric_name)).complete.at(-1)?.step ?? 0;
    if (trainer.launchKey === launchKey && isPausedAt(trainer, from) && (await continueTrainer(trainer, from, stopAfterStep))) {
      log('info', 'continuing the paused trainer in the same process', { pid: trainer.child.pid, from, to: stopAfterStep });
      return { child: trainer.child, label: spec.label, driverLog: logFile, fresh: true, continued: true, trainer, handoff };
    }
    log('info', 'the trainer left by the previous segment cannot serve this one; starting a fresh one', { pid: trainer.child.pid });
    await killGroup(trainer.child.pid);
    trainer = null;
  }
  // A trainer of this checkpoint dir that this worker cannot continue (a paused one left by a dead
  // worker, say) goes first: two trainers never share a checkpoint dir.
  if (await stopOrphanTrainer(paths.checkpointDir)) log('warn', 'stopped a trainer left running for this checkpoint dir');
  // We hold the lock and no trainer of ours runs: a tmp_step_N left now is a dead write.
  for (const name of before.inProgress) {
    log('warn', 'removing an incomplete checkpoint write left by a failed attempt', { dir: name });
    await rm(join(paths.checkpointDir, name), { recursive: true, force: true });
  }
  if (handoff) {
    await resetHandoff(handoff.dir);
    const evicted = await stopPausedTrainers(paths.checkpointDir);
    if (evicted) log('info', 'stopped paused trainers of other runs to free their memory', { count: evicted });
  }
  if (config.recovery.force_cleanup) await forceCleanup(backend.preClean(ctx));
  throwIfCancelled();
  const child = spawnToLog(spec, logFile, {}, `${spec.label}: ${spec.argv.join(' ')}`);
  if (handoff) trainer = registerTrainer({ runId, checkpointDir: paths.checkpointDir, handoffDir: handoff.dir, launchKey, child });
  if (child.pid > 0) await lock.writeTrainerPid(child.pid);
  return { child, label: spec.label, driverLog: logFile, fresh: true, continued: false, trainer, handoff };
}

/** The run's Slurm job: re-attached when it still runs (a restarted worker), else (re)submitted. */
async function slurmTrainer(ctx: BackendContext): Promise<StartedTrainer> {
  const backend = getBackend(ctx.config.backend);
  const poll = (ctx.config.nemo_rl?.slurm.poll_s ?? 15) * 1000;
  const job = await startOrAttach(ctx.paths.runDir, backend.slurmLogBase!(ctx), backend.launch(ctx, 0), backend.resubmit!(ctx), poll).catch((e) => {
    // A request Slurm refuses (bad partition, GRES, time) will not pass on a retry; a controller that did not answer may.
    if (e instanceof SbatchError) throw ApplicationFailure.create({ type: e.refused ? 'InvalidConfig' : 'SlurmUnavailable', nonRetryable: e.refused, message: e.message, ...(e.refused ? {} : { nextRetryDelay: '30s' }) });
    throw e;
  });
  return { child: job.child, label: `Slurm job ${job.record.jobId}`, driverLog: job.driverLog, fresh: !job.reattached, continued: false, trainer: null };
}

/** The seed's host-wide cleanup before a launch, only where recovery.force_cleanup allows it. */
async function forceCleanup(commands: CommandSpec[]): Promise<void> {
  for (const c of commands) {
    const r = await runCommand(c.argv, { cwd: c.cwd, timeoutMs: 60_000 });
    log('warn', 'force cleanup before the launch (recovery.force_cleanup=true)', { command: c.argv.join(' '), exitCode: r.code });
  }
}

async function hungFailure(run: ResolvedRun, step: number, workSinceMs: number, minutes: number): Promise<ApplicationFailure> {
  const newest = (await listCheckpoints(run.paths.checkpointDir, run.config.trainer.checkpointing.metric_name)).complete.at(-1) ?? null;
  const message = `the trainer printed nothing for ${minutes} min (run.hang_timeout_min) and was stopped`;
  const details: FailureDetails = { rule: 'silent-trainer', step, exitCode: null, signal: 'SIGTERM', failedAtMs: Date.now(), retryAfterSeconds: null, checkpointStep: newest?.step ?? null, workSinceMs, modelCached: true };
  await reportProgress({ stage: 'train', attempt: attempt(), failure: { type: 'Hung', message, step } }, { force: true });
  return ApplicationFailure.create({ type: 'Hung', message, nonRetryable: true, details: [details] });
}

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
