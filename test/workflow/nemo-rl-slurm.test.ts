/**
 * The NeMo RL backend's Slurm path against a REAL one-node Slurm cluster (Debian slurm-wlm and
 * munge, installed and started by scripts/slurm-local.sh) with the NeMo RL TEST DOUBLE's stand-in
 * ray.sub: submit, follow, a restarted worker re-attaching to the same job, cancel, and a
 * resubmission with --dependency=singleton after a failed job. Skipped (reported as skipped, never
 * as passed) only where Slurm cannot be installed here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ROOT, uniq } from '../helpers.js';
import { waitFor } from '../chaos/harness.js';
import type { Checkout } from '../support/nemo-rl.js';
import { NemoRlStack } from '../support/nemo-rl-stack.js';
import { ensureLocalSlurm } from '../support/slurm.js';
import type { Summary } from '../../src/common/types.js';

const CONFIG = join(ROOT, 'configs', 'nemo-rl-nemotron-nano-9b.yaml');
const MODEL = 'test-org/nemotron-tiny';

let slurm: { ok: true } | { ok: false; why: string };
const stack = new NemoRlStack('grpo-slurm');
let env: TestWorkflowEnvironment;
let checkout: Checkout;
let state: string;
const taskQueue = stack.taskQueue;

before(async () => {
  slurm = await ensureLocalSlurm();
  await stack.setup();
  ({ env, checkout, state } = stack);
});
after(() => stack.teardown());

const stopWorkers = () => stack.stopWorkers();
const startWorker = (extra: NodeJS.ProcessEnv = {}) => stack.startWorker(extra);

function start(id: string, sets: string[] = []) {
  const set = [
    `nemo_rl.repo_dir=${checkout.dir}`,
    'nemo_rl.launcher=slurm',
    'nemo_rl.slurm.container=grpo-test-double-image',
    'nemo_rl.slurm.partition=debug',
    'nemo_rl.slurm.time=10',
    'nemo_rl.slurm.poll_s=1',
    'eval.baseline=false',
    'eval.final=false',
    `model.name=${MODEL}`,
    'trainer.grpo.num_prompts_per_step=2',
    'trainer.grpo.val_period=2',
    'trainer.checkpointing.save_period=2',
    'trainer.logger.wandb_enabled=false',
    'trainer.cluster.gpus_per_node=1',
    'run.heartbeat_timeout_s=10',
    'recovery.backoff.initial_s=1',
    ...sets,
  ];
  return env.client.workflow.start('trainingRun', { taskQueue, workflowId: id, args: [{ configPath: CONFIG, runId: id, set }] });
}

const runDir = (id: string) => join(state, 'runs', id);

/** Wait for `what` while the run is still going (a failed run fails the wait at once, with why). */
async function whileRunning<T>(h: { describe(): Promise<{ status: { name: string } }>; result(): Promise<unknown> }, what: string, fn: () => T | null | false): Promise<T> {
  return waitFor(what, async () => {
    const v = fn();
    if (v) return v;
    const d = await h.describe();
    if (d.status.name !== 'RUNNING') {
      const r = await h.result().then((x) => JSON.stringify(x).slice(0, 1500), (e: Error) => e.message);
      throw new Error(`the run ended (${d.status.name}) before ${what}: ${r}`);
    }
    return null;
  }, 300_000, 500);
}
const jobRecord = (id: string) => JSON.parse(readFileSync(join(runDir(id), 'slurm-job.json'), 'utf8')) as { jobId: string; submissions: number; logBase: string; previous: string[] };
const scontrol = (jobId: string) => execFileSync('scontrol', ['show', 'job', '-o', jobId], { encoding: 'utf8' });

test('submit, follow, a restarted worker re-attaches to the same job, and the run completes', { timeout: 10 * 60_000 }, async (t) => {
  if (!slurm.ok) return t.skip(`Slurm could not be set up here: ${slurm.why}`);
  await stopWorkers();
  const w = startWorker({ FAKE_NRL_STEP_SECONDS: '4' });
  const id = uniq('slurm-run');
  const h = await start(id);
  await whileRunning(h, 'the job to reach step 2', () => existsSync(join(runDir(id), 'slurm-job.json')) && /Step 2\/6/.test(driverLog(id)));
  const first = jobRecord(id);
  assert.match(scontrol(first.jobId), /JobState=RUNNING/);
  assert.match(scontrol(first.jobId), /JobName=grpo-/);
  w.kill9();
  startWorker({ FAKE_NRL_STEP_SECONDS: '4' });
  const summary = (await h.result()) as Summary;
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  assert.equal(summary.steps.completed, 6);
  assert.equal(summary.steps.total, 6, 'the real length from "Step N/6" in ray-driver.log');
  const last = jobRecord(id);
  assert.equal(last.jobId, first.jobId, 're-attached to the same job');
  assert.equal(last.submissions, 1, 'never submitted twice');
  assert.ok(summary.ledger.some((e) => e.type === 'WorkerLost'), JSON.stringify(summary.ledger));
  assert.match(scontrol(first.jobId), /JobState=COMPLETED/);
  assert.ok(summary.best, 'checkpoints were read from the run dir');
});

test('cancelling the run scancels its job', { timeout: 6 * 60_000 }, async (t) => {
  if (!slurm.ok) return t.skip(`Slurm could not be set up here: ${slurm.why}`);
  await stopWorkers();
  const w = startWorker({ FAKE_NRL_STEP_SECONDS: '5' });
  const id = uniq('slurm-cancel');
  const h = await start(id);
  await whileRunning(h, 'the job to train', () => existsSync(join(runDir(id), 'slurm-job.json')) && /Step 1\/6/.test(driverLog(id)));
  const { jobId } = jobRecord(id);
  await h.cancel();
  const summary = await h.result().catch(() => null);
  assert.equal(summary, null, 'a cancelled run ends in cancellation');
  const s = await waitFor('the job to be cancelled', () => {
    const out = scontrol(jobId);
    return /JobState=(CANCELLED|COMPLETING)/.test(out) ? out : null;
  }, 60_000, 500);
  assert.match(s, /JobState=(CANCELLED|COMPLETING)/);
  assert.match(readFileSync(join(runDir(id), 'summary.txt'), 'utf8'), /cancelled/);
  await w.stop();
});

test('a failed job is resubmitted with --dependency=singleton after the policy decides to retry', { timeout: 8 * 60_000 }, async (t) => {
  if (!slurm.ok) return t.skip(`Slurm could not be set up here: ${slurm.why}`);
  await stopWorkers();
  const w = startWorker({ FAKE_NRL_FAIL_AT_STEP: '3', FAKE_NRL_FAIL_WITH: 'ray', FAKE_NRL_FAIL_ONCE: '1' });
  const id = uniq('slurm-retry');
  const summary = (await (await start(id)).result()) as Summary;
  await w.stop();
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  assert.deepEqual(summary.ledger.map((e) => e.type), ['RayFailure']);
  assert.match(summary.ledger[0]!.action, /relaunching; the trainer starts its own Ray cluster/);
  const rec = jobRecord(id);
  assert.equal(rec.submissions, 2, 'one resubmission');
  assert.match(scontrol(rec.jobId), /Dependency=|JobState=COMPLETED/);
  // The first job failed with the driver's exit code; the second resumed from a checkpoint of the first.
  assert.equal(rec.previous.length, 1);
  const firstLog = readFileSync(join(rec.logBase, `${rec.previous[0]}-logs`, 'ray-driver.log'), 'utf8');
  assert.match(firstLog, /ActorDiedError|actor died/i);
  assert.match(driverLog(id), /resuming at step 2/);
});

function driverLog(id: string): string {
  if (!existsSync(join(runDir(id), 'slurm-job.json'))) return '';
  const rec = jobRecord(id);
  const p = join(rec.logBase, `${rec.jobId}-logs`, 'ray-driver.log');
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}
