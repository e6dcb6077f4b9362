/** Checkpoint bookkeeping and the checkpoint-dir lock. */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync, rmSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { expectedRetention, readCheckpointBook } from '../../src/checkpoints/reader.js';
import { CheckpointLock, LockBusyError, LOCK_FILE, PID_FILE } from '../../src/process/lock.js';
import { groupAlive, procStartTime, HOST } from '../../src/process/proc.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'grpo-ckpt-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function ckpt(step: number, acc?: number, opts: { tmp?: boolean; noInfo?: boolean } = {}) {
  const d = join(dir, `${opts.tmp ? 'tmp_' : ''}step_${step}`);
  mkdirSync(d, { recursive: true });
  if (!opts.noInfo) writeFileSync(join(d, 'training_info.json'), JSON.stringify({ total_steps: step, ...(acc === undefined ? {} : { 'val:accuracy': acc }) }));
}
const rule = { metricName: 'val:accuracy', higherIsBetter: true, keepTopK: 3 };
const names = () => readdirSync(dir).filter((n) => /step_/.test(n)).sort();

test('the book reports what the trainer kept, picks the best by val:accuracy, and never deletes', () => {
  ckpt(12, 0.5);
  ckpt(18, 0.3);
  ckpt(24, 0.4);
  ckpt(30, 0.05);
  const book = readCheckpointBook(dir, rule);
  assert.deepEqual(book.retained.map((c) => c.step), [12, 18, 24, 30]);
  assert.deepEqual(book.removed, []);
  assert.equal(book.best?.step, 12);
  assert.equal(book.newest?.step, 30);
  assert.deepEqual(book.violations, [], 'top 3 plus the newest is what retention promises');
});

test('checkpoints beyond top-k plus newest are reported as a broken promise and left on disk', () => {
  ckpt(6, 0.1);
  ckpt(12, 0.5);
  ckpt(18, 0.3);
  ckpt(24, 0.4);
  ckpt(30, 0.05);
  const book = readCheckpointBook(dir, rule);
  assert.equal(book.violations?.length, 1);
  assert.match(book.violations![0]!, /step_6 beyond the top 3 by val:accuracy plus the newest/);
  assert.deepEqual(names(), ['step_12', 'step_18', 'step_24', 'step_30', 'step_6'], 'the pipeline deletes nothing');
});

test('tmp_step_N (being written) and step dirs without training_info.json are never counted', () => {
  ckpt(24, 0.4);
  ckpt(30, undefined, { tmp: true });
  ckpt(36, undefined, { noInfo: true });
  const book = readCheckpointBook(dir, { ...rule, keepTopK: 1 });
  assert.deepEqual(book.inProgress, ['tmp_step_30']);
  assert.deepEqual(book.retained.map((c) => c.step), [24]);
  assert.equal(book.newest?.step, 24, 'tmp_step_30 is not the newest');
  assert.ok(existsSync(join(dir, 'tmp_step_30')));
  assert.ok(existsSync(join(dir, 'step_36')));
});

test('without any metric, top-k degrades to newest and best is the newest', () => {
  const cs = [6, 12, 18, 24, 30].map((step) => ({ step, dir: `d${step}`, metric: null }));
  const d = expectedRetention(cs, rule);
  assert.deepEqual(d.keep.map((c) => c.step), [18, 24, 30]);
  assert.equal(d.best?.step, 30);
});

test('lower-is-better metrics and ties prefer the higher step', () => {
  const cs = [
    { step: 2, dir: 'a', metric: 0.5 },
    { step: 4, dir: 'b', metric: 0.2 },
    { step: 6, dir: 'c', metric: 0.2 },
    { step: 8, dir: 'd', metric: 0.9 },
  ];
  const d = expectedRetention(cs, { metricName: 'train:loss', higherIsBetter: false, keepTopK: 1 });
  assert.equal(d.best?.step, 6);
  assert.deepEqual(d.keep.map((c) => c.step), [6, 8]);
});

test('the lock is exclusive while its owner lives', async () => {
  const a = await CheckpointLock.acquire(dir, 'run1', 'first');
  await assert.rejects(CheckpointLock.acquire(dir, 'run1', 'second'), (e: unknown) => e instanceof LockBusyError && /locked by first/.test((e as Error).message));
  await a.release();
  const b = await CheckpointLock.acquire(dir, 'run1', 'third');
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).holder, 'third');
  await b.release();
  assert.ok(!existsSync(join(dir, LOCK_FILE)));
});

test('a stale lock from a dead pid is taken over, and its orphaned trainer group is stopped', async () => {
  // A "dead worker": a process that exits at once.
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.once('exit', r));
  // Its orphaned "trainer": a sleeping process group whose command line names the checkpoint dir.
  const orphan = spawn('bash', ['-c', `exec -a "trainer ${dir}" sleep 300`], { detached: true, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: HOST, pid: dead.pid, pidStart: 'x', runId: 'r', holder: 'dead worker', acquiredAt: 'then' }));
  writeFileSync(join(dir, PID_FILE), JSON.stringify({ pid: orphan.pid, pidStart: procStartTime(orphan.pid!), host: HOST, checkpointDir: dir, startedAt: 'then' }));
  assert.ok(groupAlive(orphan.pid!));
  const lock = await CheckpointLock.acquire(dir, 'r', 'new attempt');
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).holder, 'new attempt');
  assert.ok(!groupAlive(orphan.pid!), 'orphaned trainer group was stopped before taking over');
  await lock.release();
});

test('a lock whose pid was reused by another process counts as stale', async () => {
  // pid 1 is alive, but its start time does not match the recorded one.
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: HOST, pid: 1, pidStart: 'not-the-same', runId: 'r', holder: 'old', acquiredAt: 'then' }));
  const lock = await CheckpointLock.acquire(dir, 'r', 'fresh');
  await lock.release();
});

test('killGroup also ends descendants that moved to their own process group (e.g. Ray workers)', async () => {
  const { killGroup, sessionMembers } = await import('../../src/process/proc.js');
  // bash with job control puts `sleep` into its own process group, inside the same session.
  const leader = spawn('bash', ['-c', 'set -m; sleep 300 & wait'], { detached: true, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const members = sessionMembers(leader.pid!);
  assert.ok(members.length >= 2, `leader and sleep in the session: ${members}`);
  await killGroup(leader.pid!, 2000);
  assert.deepEqual(sessionMembers(leader.pid!), []);
});

test("a lock held from another host is busy while its lease is fresh and taken over once it is stale", async () => {
  const lockPath = join(dir, LOCK_FILE);
  const foreign = { host: 'lost-host.example', pid: 4242, pidStart: null, runId: 'r', holder: 'trainSegment', acquiredAt: new Date().toISOString() };
  writeFileSync(lockPath, JSON.stringify(foreign));
  await assert.rejects(CheckpointLock.acquire(dir, 'r', 'test', { staleAfterMs: 60_000 }), LockBusyError);
  const old = new Date(Date.now() - 10 * 60_000);
  utimesSync(lockPath, old, old);
  const lock = await CheckpointLock.acquire(dir, 'r', 'test', { staleAfterMs: 60_000 });
  assert.equal(lock.tookOver?.from?.host, 'lost-host.example');
  assert.equal(JSON.parse(readFileSync(lockPath, 'utf8')).host, HOST);
  await lock.release();
});
