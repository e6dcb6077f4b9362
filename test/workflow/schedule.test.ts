/**
 * `grpo schedule`: a real Temporal Schedule on a real dev server fires the real workflow and
 * activities (trainer TEST DOUBLE, test/doubles/fake-trainer-TEST-DOUBLE); each fire is its own run
 * with its own run directory, a fire while a run still runs is skipped, and the CLI refuses bad
 * input with exit 2 and a message naming what is wrong.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScheduleHandle } from '@temporalio/client';
import { cli, uniq } from '../helpers.js';
import { startPipeline, type Pipeline } from '../support/pipeline.js';
import { createSchedule, scheduleView } from '../../src/cli/commands/schedule.js';
import { checkCron } from '../../src/cli/schedule-format.js';
import { RUN_ID_PATTERN, runIdOfWorkflow, type Summary } from '../../src/common/types.js';

let pipeline: Pipeline;
let address: string;

before(async () => {
  pipeline = await startPipeline('double', 'grpo-sched');
  address = pipeline.env.connection.options.address;
});
after(() => pipeline.stop());

const CONFIG = 'configs/builtin-cpu.yaml';
const fast = [
  'model.source=tiny-random',
  'ray.enabled=false',
  'eval.limit=2',
  'eval.baseline=false',
  'trainer.grpo.max_num_steps=4',
  'run.segment_steps=4',
  'trainer.grpo.val_period=2',
  'trainer.checkpointing.save_period=2',
  'trainer.checkpointing.keep_top_k=1',
  'run.heartbeat_timeout_s=4',
];

const grpo = (args: string[]) => cli(args, { env: { TEMPORAL_ADDRESS: address } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Delete a schedule and see its runs end (cancelled after a minute), so nothing outlives the test. */
async function removeSchedule(handle: ScheduleHandle): Promise<void> {
  const d = await handle.describe().catch(() => null);
  await handle.delete().catch(() => undefined);
  for (const a of d?.info.runningActions ?? []) {
    const wf = pipeline.env.client.workflow.getHandle(a.workflow.workflowId);
    const timer = setTimeout(() => void wf.cancel().catch(() => undefined), 60_000);
    await wf.result().catch(() => undefined);
    clearTimeout(timer);
  }
}

test("a fire's workflow id maps to a valid run id of its own; cron expressions are checked before the server sees them", () => {
  assert.equal(runIdOfWorkflow('nightly-2026-12-02T10:30:00Z'), 'nightly-2026-12-02T10-30-00Z');
  assert.equal(runIdOfWorkflow('my-run_1.x'), 'my-run_1.x', 'a valid id is kept as is');
  assert.notEqual(runIdOfWorkflow('n-2026-12-02T10:30:00Z'), runIdOfWorkflow('n-2026-12-02T10:30:02Z'));
  for (const ok of ['0 3 * * *', '*/15 9-17 * * MON-FRI', '30 2 1,15 JAN-MAR sun', '@daily']) assert.equal(checkCron(ok), ok);
  for (const [bad, why] of [['0 3 * *', /4 field/], ['60 * * * *', /minute "60" is not in 0-59/], ['0 3 * 13 *', /month "13"/], ['*/0 * * * *', /malformed/], ['0 5-2 * * *', /backwards/], ['@every 5m', /--every/]] as const)
    assert.throws(() => checkCron(bad), (e: Error) => /^--cron: /.test(e.message) && why.test(e.message), bad);
});

test('a schedule every 2s fires, each run completes in its own run dir, and fires while a run runs are skipped', async () => {
  process.env.FAKE_STEP_SECONDS = '1';
  const client = pipeline.env.client;
  const name = uniq('sched');
  const line = uniq('line');
  const { handle } = await createSchedule(client, { name, configPath: CONFIG, set: [...fast, 'promotion.enabled=true', `promotion.line=${line}`], every: '2s', taskQueue: pipeline.taskQueue });
  try {
    // Watch until the second fire: the first run takes several 2s intervals (4 steps of 1s and more).
    let maxRunning = 0;
    let fires: string[] = [];
    for (let i = 0; i < 360 && fires.length < 2; i++) {
      const d = await handle.describe();
      maxRunning = Math.max(maxRunning, d.info.runningActions.length);
      fires = d.info.recentActions.map((a) => a.action.workflow.workflowId);
      if (fires.length < 2) await sleep(500);
    }
    await handle.pause('test done');
    assert.equal(fires.length, 2, `the schedule fired twice: ${fires}`);
    const runIds = fires.map(runIdOfWorkflow);
    assert.notEqual(runIds[0], runIds[1]);
    for (const [i, wf] of fires.entries()) {
      const summary = (await client.workflow.getHandle(wf).result()) as Summary;
      assert.equal(summary.state, 'completed');
      assert.equal(summary.steps.completed, 4);
      // Temporal names a fire <name>-<time>; its run id replaces the ':'s and owns its run dir.
      assert.match(wf, new RegExp(`^${name}-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
      assert.match(runIds[i]!, RUN_ID_PATTERN);
      assert.equal(summary.runId, runIds[i]);
      const dir = join(pipeline.state, 'runs', runIds[i]!);
      assert.equal((JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary).state, 'completed');
      assert.ok(existsSync(join(dir, 'logs', 'trainer.log')));
    }
    // Each run's promotion decision is recorded: the first model of the line is promoted; the second
    // run is compared with it on the same tasks (its 1-task gain over 4 tasks is within the noise).
    const summaries = await Promise.all(fires.map(async (wf) => (await client.workflow.getHandle(wf).result()) as Summary));
    assert.deepEqual(summaries.map((x) => [x.promotion?.promoted, x.promotion?.against]), [[true, 'none'], [false, 'incumbent']], JSON.stringify(summaries.map((x) => x.promotion)));
    assert.match(summaries[1]!.promotion!.reason, /noise|interval/);
    const models = await grpo(['models', '--line', line, '--json']);
    assert.equal(models.code, 0, models.out);
    const registry = JSON.parse(models.stdout) as { current: { runId: string } | null; history: { runId: string; decision: string }[] };
    assert.equal(registry.current?.runId, runIds[0], 'the promoted model is still the first run');
    assert.deepEqual(registry.history.map((r) => [r.runId, r.decision]), [[runIds[0], 'promoted'], [runIds[1], 'rejected']]);
    const [first, runId] = [fires[0]!, runIds[0]!];
    const runDir = join(pipeline.state, 'runs', runId);

    // Overlap SKIP: the first run spanned several intervals, yet never two ran at once.
    const view = await scheduleView(client, await handle.describe());
    assert.ok(view.skippedForOverlap > 0, `fires skipped for overlap: ${view.skippedForOverlap}`);
    assert.equal(maxRunning, 1);
    assert.equal(view.overlap, 'SKIP');
    assert.equal(view.pauseOnFailure, true);
    assert.equal(view.paused, true);
    assert.deepEqual(view.recentRuns.map((r) => [r.workflowId, r.runId, r.status]), fires.map((f, i) => [f, runIds[i], 'COMPLETED']));

    // The CLI sees the fire by its workflow id, and describe lists it with its outcome.
    const st = await grpo(['status', first, '--json']);
    assert.equal(st.code, 0, st.out);
    const status = JSON.parse(st.stdout) as { workflowStatus: string; runId: string; runDir: string };
    assert.equal(status.workflowStatus, 'COMPLETED');
    assert.equal(status.runId, runId);
    assert.equal(status.runDir, runDir);
    const desc = await grpo(['schedule', 'describe', name]);
    assert.equal(desc.code, 0, desc.out);
    assert.match(desc.stdout, new RegExp(`COMPLETED\\s+${first}\\s+\\(run id ${runId}\\)`));
    assert.match(desc.stdout, /PAUSED \(test done\)/);
    assert.match(desc.stdout, /[1-9]\d* skipped for overlap/);
  } finally {
    delete process.env.FAKE_STEP_SECONDS;
    await removeSchedule(handle);
  }
});

test('grpo schedule: bad input exits 2 naming what is wrong; create, list, describe, pause, unpause, delete', async () => {
  const name = uniq('cli-sched');
  const missing = uniq('no-such-schedule');
  for (const verb of ['describe', 'pause', 'unpause', 'trigger', 'delete']) {
    const r = await grpo(['schedule', verb, missing]);
    assert.equal(r.code, 2, `${verb}: ${r.out}`);
    assert.match(r.stderr, new RegExp(`no schedule named "${missing}"`), verb);
  }
  const create = (...args: string[]) => grpo(['schedule', 'create', name, CONFIG, ...args]);
  for (const [args, msg] of [
    [['--cron', '0 3 * *'], /^--cron: 4 field\(s\) in "0 3 \* \*"/],
    [['--cron', '61 3 * * *'], /^--cron: minute "61" is not in 0-59/],
    [['--cron', 'every day'], /^--cron: /],
    [[], /give one of --cron EXPR .* or --every DURATION/],
    [['--cron', '0 3 * * *', '--every', '1h'], /only one of --cron and --every/],
    [['--every', '5 minutes'], /^--every: expected a duration such as 30s/],
    [['--every', '1h', '--catchup-window', 'soon'], /^--catchup-window: expected a duration/],
    [['--every', '1h', '--overlap', 'sometimes'], /^--overlap: expected one of SKIP, /],
  ] as const) {
    const r = await create(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    assert.match(r.stderr, msg, args.join(' '));
  }
  const noFile = await grpo(['schedule', 'create', name, 'configs/no-such.yaml', '--every', '1h']);
  assert.equal(noFile.code, 2, noFile.out);
  assert.match(noFile.stderr, /configs\/no-such\.yaml: no such file/);
  const badField = await create('--every', '1h', '--set', 'trainer.grpo.max_num_steps=many');
  assert.equal(badField.code, 2, badField.out);
  assert.match(badField.stderr, /configs\/builtin-cpu\.yaml: Invalid config:\n.*trainer\.grpo\.max_num_steps/);

  const made = await create('--cron', '0 3 * * *', '--paused', '--set', 'trainer.grpo.max_num_steps=3', '--json');
  assert.equal(made.code, 0, made.out);
  const handle = pipeline.env.client.schedule.getHandle(name);
  try {
    const j = JSON.parse(made.stdout) as { name: string; paused: boolean; nextFireTimes: string[] };
    assert.equal(j.name, name);
    assert.equal(j.paused, true);
    assert.match(j.nextFireTimes[0] ?? '', /^\d{4}-\d\d-\d\dT03:00:00\.000Z$/);
    const again = await create('--every', '1h');
    assert.equal(again.code, 2, again.out);
    assert.match(again.stderr, new RegExp(`a schedule named ${name} already exists`));

    const d = await grpo(['schedule', 'describe', name]);
    assert.equal(d.code, 0, d.out);
    assert.match(d.stdout, /PAUSED/);
    assert.match(d.stdout, /spec: +--cron "0 3 \* \* \*" \(UTC\)/);
    assert.match(d.stdout, /config: +\S+configs\/builtin-cpu\.yaml --set trainer\.grpo\.max_num_steps=3/);
    assert.match(d.stdout, /next fire times: \d{4}-\d\d-\d\dT03:00:00\.000Z, \d{4}-\d\d-\d\dT03:00:00\.000Z/);

    // The list comes from the server's visibility store, which lags a create by a moment.
    type Row = { name: string; paused: boolean; nextFireTimes: string[] };
    let row: Row | undefined;
    for (let i = 0; i < 40 && !row; i++) {
      const l = await grpo(['schedule', 'list', '--json']);
      assert.equal(l.code, 0, l.out);
      row = (JSON.parse(l.stdout) as Row[]).find((s) => s.name === name);
      if (!row) await sleep(500);
    }
    assert.ok(row, 'the schedule is listed');
    assert.match(row.nextFireTimes[0] ?? '', /T03:00:00\.000Z$/);

    assert.equal((await grpo(['schedule', 'unpause', name])).code, 0);
    assert.equal((await handle.describe()).state.paused, false);
    const paused = await grpo(['schedule', 'pause', name, '--note', 'maintenance']);
    assert.equal(paused.code, 0, paused.out);
    const view = JSON.parse((await grpo(['schedule', 'describe', name, '--json'])).stdout) as { paused: boolean; note: string };
    assert.deepEqual([view.paused, view.note], [true, 'maintenance']);

    const del = await grpo(['schedule', 'delete', name]);
    assert.equal(del.code, 0, del.out);
    const gone = await grpo(['schedule', 'describe', name]);
    assert.equal(gone.code, 2, gone.out);
    assert.match(gone.stderr, new RegExp(`no schedule named "${name}"`));
  } finally {
    await handle.delete().catch(() => undefined);
  }
});
