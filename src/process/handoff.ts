/**
 * Segment handoff: consecutive training segments of a run share one trainer process.
 *
 * A segment's trainer pauses at its last step (checkpoint complete) and writes `paused-<step>.json`;
 * the next segment, when it runs in the same worker, answers `continue-<step>.json` and follows the
 * same process instead of starting a new one (imports, model load, optimizer restore: seconds to
 * minutes). The protocol's other side is trainer/grpo_trainer/training/handoff.py.
 *
 * Only trainers this worker process spawned are continued: their exit code is known (the child is
 * ours) and they cannot be a dead worker's orphan. Anything else found alive is stopped and a fresh
 * trainer resumes from the newest checkpoint, exactly as without handoff.
 */
import { link, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { killGroup, type Spawned } from './proc.js';
import { getBackend, type SegmentHandoff } from '../backends/index.js';
import type { PipelineConfig } from '../config/schema.js';

/** The handoff a run's segments use, or none (disabled, a backend without it, no checkpoints to wait at). */
export function handoffFor(config: PipelineConfig, runDir: string): SegmentHandoff | undefined {
  const on = getBackend(config.backend).segmentHandoff && config.run.segment_handoff_timeout_s > 0 && config.trainer.checkpointing.enabled;
  return on ? { dir: join(runDir, 'handoff'), timeoutS: config.run.segment_handoff_timeout_s } : undefined;
}

export interface LiveTrainer {
  runId: string;
  checkpointDir: string;
  handoffDir: string;
  /** The launch command without its segment end: a continued trainer must run the same config. */
  launchKey: string;
  child: Spawned;
  exited: boolean;
  /** The step it was left waiting at by the last segment, if any. */
  pausedAt: number | null;
}

/** Trainers spawned by this worker process, by checkpoint dir. */
const live = new Map<string, LiveTrainer>();

export function registerTrainer(t: Omit<LiveTrainer, 'exited' | 'pausedAt'>): LiveTrainer {
  const entry: LiveTrainer = { ...t, exited: false, pausedAt: null };
  live.set(t.checkpointDir, entry);
  void t.child.exit.then(() => {
    entry.exited = true;
    if (live.get(t.checkpointDir) === entry) live.delete(t.checkpointDir);
  });
  return entry;
}

export function liveTrainer(checkpointDir: string): LiveTrainer | null {
  const t = live.get(checkpointDir);
  return t && !t.exited ? t : null;
}

export const pausedFile = (dir: string, step: number) => join(dir, `paused-${step}.json`);
export const continueFile = (dir: string, step: number) => join(dir, `continue-${step}.json`);

export function isPausedAt(t: LiveTrainer, step: number): boolean {
  return !t.exited && existsSync(pausedFile(t.handoffDir, step)) && !existsSync(continueFile(t.handoffDir, step));
}

/** Create `path` only if it does not exist (write aside, then link): exactly one answer wins. */
async function createExclusive(path: string, payload: unknown): Promise<boolean> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(payload));
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Ask the trainer paused at `fromStep` to go on to `toStep`. False when it had already given up
 * waiting (its own `exit` answer won): it is leaving, and the caller starts a fresh one.
 */
export async function continueTrainer(t: LiveTrainer, fromStep: number, toStep: number): Promise<boolean> {
  if (await createExclusive(continueFile(t.handoffDir, fromStep), { stop_after_step: toStep })) return true;
  const answer = JSON.parse(await readFile(continueFile(t.handoffDir, fromStep), 'utf8')) as { exit?: boolean; stop_after_step?: number };
  return !answer.exit && answer.stop_after_step === toStep;
}

/** A fresh trainer starts with no answers lying around from an earlier one. */
export async function resetHandoff(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

/**
 * Stop trainers of other runs that sit paused in this worker (they hold memory, maybe a GPU, that
 * the next trainer needs). Each is at a complete checkpoint, so its run loses nothing: its next
 * segment resumes there in a fresh process.
 */
export async function stopPausedTrainers(except?: string): Promise<number> {
  let n = 0;
  for (const t of [...live.values()]) {
    if (t.checkpointDir === except || t.pausedAt === null || !isPausedAt(t, t.pausedAt)) continue;
    await killGroup(t.child.pid);
    n++;
  }
  return n;
}
