/**
 * The CLI around a run's end, against the pipeline with the trainer TEST DOUBLE:
 * - the quickstart's Ctrl-C (follow with onInterrupt 'cancel') cancels the run and returns only
 *   once it is recorded as cancelled, so the worker it then stops leaves no run behind;
 * - `grpo status` and `grpo list` with nobody to answer: a completed run whose worker has stopped
 *   is shown from its run dir (summary.json), and says so; with the server unreachable too, and
 *   for a run dir without a summary (checkpoints, metrics).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import type { Summary } from '../../src/common/types.js';
import { follow } from '../../src/cli/commands/run.js';
import { cli, uniq } from '../helpers.js';
import { startPipeline, type Pipeline } from '../support/pipeline.js';

let pipeline: Pipeline | null;
let state: string;
let address: string;
const runId = uniq('disk');

const fast = ['model.source=tiny-random', 'ray.enabled=false', 'eval.limit=2', 'trainer.grpo.max_num_steps=4', 'run.segment_steps=2', 'trainer.grpo.val_period=2', 'trainer.checkpointing.save_period=2', 'trainer.checkpointing.keep_top_k=1', 'run.heartbeat_timeout_s=4'];

before(async () => {
  process.env.GRPO_KEEP_TEST_STATE = '1'; // the run dirs must outlive the pipeline's worker
  pipeline = await startPipeline('double', 'grpo-cli-runs');
  state = pipeline.state;
  address = pipeline.env.connection.options.address;
});
after(async () => {
  await pipeline?.stop();
  delete process.env.GRPO_KEEP_TEST_STATE;
  rmSync(state, { recursive: true, force: true });
});

test("the quickstart's Ctrl-C cancels the run and waits until it is recorded as cancelled", { timeout: 300_000 }, async () => {
  process.env.FAKE_STEP_SECONDS = '3';
  const h = await pipeline!.start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'eval.final=false', 'trainer.grpo.max_num_steps=40', 'run.segment_steps=40'] });
  // The test runner's own SIGINT handler would cancel the tests: it steps aside while follow has the signal.
  const runner = process.listeners('SIGINT');
  for (const l of runner) process.removeListener('SIGINT', l);
  try {
    const client = new Client({ connection: pipeline!.env.connection });
    const following = follow(client, h.workflowId, { onInterrupt: 'cancel', quietSummary: true });
    const pidFile = join(state, 'runs', h.workflowId, 'checkpoints', 'trainer.pid');
    for (let i = 0; i < 240 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 500));
    assert.ok(existsSync(pidFile), 'the trainer started');
    process.emit('SIGINT'); // what Ctrl-C delivers to the quickstart (its worker and server have process groups of their own)
    assert.equal(await following, 130);
    assert.equal((await h.describe()).status.name, 'CANCELLED', 'recorded as cancelled before follow returned');
    assert.equal(process.listenerCount('SIGINT'), 0, 'follow leaves no signal handler behind');
  } finally {
    for (const l of runner) process.on('SIGINT', l);
    delete process.env.FAKE_STEP_SECONDS;
    await h.cancel().catch(() => undefined);
  }
});

test('status of a completed run with no worker: the summary from disk, saying so', { timeout: 300_000 }, async () => {
  const summary = (await (await pipeline!.start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'eval.final=false'] }, runId)).result()) as Summary;
  assert.equal(summary.state, 'completed');
  await pipeline!.stop(); // no worker polls the run's task queue any more
  pipeline = null;
  const env = { TEMPORAL_ADDRESS: address, GRPO_STATE_DIR: state };
  const r = await cli(['status', runId], { env });
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, new RegExp(`Run ${runId}: workflow COMPLETED\\. From disk \\(${join(state, 'runs', runId)}\\), because no worker answered the status query`));
  assert.match(r.stdout, new RegExp(`GRPO run ${runId}: completed after`));
  assert.match(r.stdout, /Steps: 4\/4/);
  const js = await cli(['status', runId, '--json'], { env });
  assert.equal(js.code, 0, js.out);
  const o = JSON.parse(js.stdout) as { workflowStatus: string; source: string; note: string; summary: Summary };
  assert.equal(o.workflowStatus, 'COMPLETED');
  assert.equal(o.source, 'disk');
  assert.match(o.note, /no worker answered/);
  assert.equal(o.summary.state, 'completed');
  assert.equal(o.summary.steps.completed, 4);
});

test('with the server unreachable too: status and list read the run dirs, and say so', { timeout: 120_000 }, async () => {
  const env = { TEMPORAL_ADDRESS: '127.0.0.1:1', GRPO_STATE_DIR: state };
  const st = await cli(['status', runId], { env });
  assert.equal(st.code, 0, st.out);
  assert.match(st.stdout, /From disk .*because the Temporal server at 127\.0\.0\.1:1 did not answer/);
  assert.match(st.stdout, /Steps: 4\/4/);
  // A run dir without summary.json (a run whose worker stopped mid-way): its checkpoints and metrics.
  const partial = `${runId}-partial`;
  cpSync(join(state, 'runs', runId), join(state, 'runs', partial), { recursive: true });
  rmSync(join(state, 'runs', partial, 'summary.json'));
  const p = await cli(['status', partial], { env });
  assert.equal(p.code, 0, p.out);
  assert.match(p.stdout, /no summary\.json yet/);
  assert.match(p.stdout, /Steps: 4\/4/);
  assert.match(p.stdout, /Checkpoints \(val:accuracy\):\n {2}step_4 {2}\d\.\d{3} {2}best/);
  const ls = await cli(['list'], { env });
  assert.equal(ls.code, 0, ls.out);
  assert.match(ls.stderr, /did not answer .*run dirs in .*from disk/);
  assert.match(ls.stdout, new RegExp(`${runId} +completed`));
  assert.match(ls.stdout, new RegExp(`${partial} +no summary`));
  const lj = await cli(['list', '--json', '--state', 'completed'], { env });
  assert.equal(lj.code, 0, lj.out);
  const rows = JSON.parse(lj.stdout) as { runId: string; source: string; state: string }[];
  assert.deepEqual(rows.map((x) => [x.runId, x.source, x.state]), [[runId, 'disk', 'completed']]);
  // Nothing on disk either: the unreachable-server error, as before.
  const none = await cli(['status', 'no-such-run'], { env });
  assert.equal(none.code, 3, none.out);
  assert.match(none.stderr, /Cannot reach the Temporal server/);
});
