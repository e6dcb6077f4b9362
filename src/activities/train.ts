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
import { getBackend, type CommandSpec } from '../backends/index.js';
import { listCheckpoints } from '../checkpoints/reader.js';
import { attempt, confirmCancel, currentContext, log, reportProgress, throwIfCancelled } from '../common/activity-context.js';
import type { DataInfo, EnvInfo, Metrics, ModelInfo, RayInfo, ResolvedRun, SegmentResult } from '../common/types.js';
import { consumeForceRebuild } from '../environment/trainer.js';
import { continueTrainer, handoffFor, isPausedAt, liveTrainer, pausedFile, registerTrainer, resetHandoff, stopPausedTrainers } from '../process/handoff.js';
import { CheckpointLock, LockBusyError, stopOrphanTrainer } from '../process/lock.js';
import { FileFollower, killGroup, oomKillCount, spawnToLog, type Spawned } from '../process/proc.js';
import { trackProcess } from '../process/supervise.js';
import { failureFromTrainer } from './failure.js';
import { backendCtx } from './support.js';
import { parseTrainerEvent, trainerEventsFile } from '../backends/events.js';

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
    // The trainer says when it is under way (model loaded, training): that ends a recovery's clock.
    const events = new FileFollower(trainerEventsFile(run.paths.logDir));
    await events.skipToEnd();
    let child: Spawned;
    if (trainer) child = trainer.child;
    else {
      throwIfCancelled();
      child = spawnToLog(spec, logFile, {}, `${spec.label}: ${spec.argv.join(' ')}`);
      if (handoff) trainer = registerTrainer({ runId: run.runId, checkpointDir: run.paths.checkpointDir, handoffDir: handoff.dir, launchKey, child });
      if (child.pid > 0) await lock.writeTrainerPid(child.pid);
      await consumeForceRebuild(ctx, env);
    }
    const r = await trackProcess(child, spec.label, logFile, {
      tickMs: 2000,
      until: handoff ? () => existsSync(pausedFile(handoff.dir, stopAfterStep)) : undefined,
      onTick: async () => {
        await lock.renew();
        consume(await follower.readNewLines());
        if (!running) {
          for (const line of await events.readNewLines()) {
            const e = parseTrainerEvent(line);
            if (e?.event === 'running') {
              running = { atMs: Date.now(), fromStep: e.step, launchedAtMs: startedAtMs };
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
