/**
 * Segment handoff between the pipeline (src/activities/handoff.ts) and a real Python process running
 * the trainer's side of the protocol (trainer/grpo_trainer/training/handoff.py, no model needed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { continueTrainer, isPausedAt, liveTrainer, pausedFile, registerTrainer, stopPausedTrainers } from '../../src/process/handoff.js';
import { spawnToLog, tailFile } from '../../src/process/proc.js';
import { ROOT, STATE } from '../helpers.js';

const PYTHON = join(STATE, 'envs', 'builtin', 'bin', 'python');

/** A process that pauses at `step` exactly as the trainer does, then prints its decision. */
function pausedProcess(runDir: string, step: number, timeoutS: number) {
  const handoffDir = join(runDir, 'handoff');
  const code = [
    'import sys',
    'from grpo_trainer.training.handoff import wait_for_next_segment',
    `d = wait_for_next_segment(${JSON.stringify(handoffDir)}, ${step}, timeout_s=${timeoutS}, is_main=True)`,
    'print("decision", "exit" if d.exit else d.stop_after_step, flush=True)',
  ].join('\n');
  const log = join(runDir, 'trainer.log');
  const child = spawnToLog({ label: 'paused', argv: [PYTHON, '-c', code], cwd: ROOT, env: { PYTHONPATH: join(ROOT, 'trainer') }, passEnv: [] }, log);
  const checkpointDir = join(runDir, 'checkpoints');
  const t = registerTrainer({ runId: runDir, checkpointDir, handoffDir, launchKey: 'k', child });
  return { t, log, handoffDir, checkpointDir };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a paused trainer is continued to the next segment end in the same process', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'grpo-handoff-'));
  const p = pausedProcess(runDir, 2, 60);
  await until('the pause marker', () => existsSync(pausedFile(p.handoffDir, 2)));
  assert.ok(isPausedAt(p.t, 2));
  assert.ok(!isPausedAt(p.t, 4), 'paused at 2, not at 4');
  assert.equal(liveTrainer(p.checkpointDir), p.t);
  assert.equal(await continueTrainer(p.t, 2, 4), true);
  assert.deepEqual(await p.t.child.exit, { code: 0, signal: null });
  assert.match(await tailFile(p.log), /decision 4/);
  assert.equal(liveTrainer(p.checkpointDir), null, 'an exited trainer is not live');
});

test('a trainer that gave up waiting cannot be continued: the caller starts a fresh one', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'grpo-handoff-'));
  const p = pausedProcess(runDir, 3, 0.3);
  assert.deepEqual(await p.t.child.exit, { code: 0, signal: null });
  assert.match(await tailFile(p.log), /decision exit/);
  assert.equal(isPausedAt(p.t, 3), false);
  assert.equal(await continueTrainer(p.t, 3, 6), false);
});

test("starting another run's trainer stops this worker's paused trainers, not its own", async () => {
  const a = pausedProcess(mkdtempSync(join(tmpdir(), 'grpo-handoff-a-')), 2, 60);
  const b = pausedProcess(mkdtempSync(join(tmpdir(), 'grpo-handoff-b-')), 2, 60);
  await until('both pause markers', () => existsSync(pausedFile(a.handoffDir, 2)) && existsSync(pausedFile(b.handoffDir, 2)));
  a.t.pausedAt = b.t.pausedAt = 2; // as trainSegment records when it leaves a trainer waiting
  assert.equal(await stopPausedTrainers(b.checkpointDir), 1);
  assert.notEqual((await a.t.child.exit).signal, null, 'a was stopped by a signal');
  assert.ok(liveTrainer(b.checkpointDir), 'b is still there');
  assert.equal(await continueTrainer(b.t, 2, 4), true);
  assert.equal((await b.t.child.exit).code, 0);
});
