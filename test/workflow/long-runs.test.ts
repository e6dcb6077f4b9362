/**
 * Runs of any length and runs resumed: a run of many segments continues as new with its status,
 * ledger and summary intact; progress reaches the workflow only when it changed; a terminated run
 * is resumed by `grpo resume` from its newest checkpoint; search attributes filter runs. Real dev
 * server, real activities, the trainer's TEST DOUBLE.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { cli, uniq } from '../helpers.js';
import { startPipeline, type Pipeline } from '../support/pipeline.js';
import type { RunStatus, Summary } from '../../src/common/types.js';
import { procCmdline } from '../../src/process/proc.js';

/** A trainer process working on this run (by its command line). */
function trainerRunning(runDir: string): boolean {
  return readdirSync('/proc').some((n) => /^\d+$/.test(n) && procCmdline(Number(n)).includes(runDir) && procCmdline(Number(n)).includes(' train'));
}

let pipeline: Pipeline;
let env: TestWorkflowEnvironment;

before(async () => {
  pipeline = await startPipeline('double', 'grpo-long');
  ({ env } = pipeline);
});
after(() => pipeline.stop());

const STEPS = 12;
const base = [
  'model.source=tiny-random',
  'ray.enabled=false',
  'eval.limit=2',
  `trainer.grpo.max_num_steps=${STEPS}`,
  'run.segment_steps=2',
  'trainer.grpo.val_period=2',
  'trainer.checkpointing.save_period=2',
  'trainer.checkpointing.keep_top_k=2',
  'run.heartbeat_timeout_s=4',
  'recovery.backoff.initial_s=1',
];

/** Every execution of a workflow id, oldest first, with its history length. The status comes from each
 * execution's own record (describe): the list's visibility copy can still say RUNNING just after the
 * result has arrived. */
async function executions(id: string): Promise<{ runId: string; status: string; events: number }[]> {
  const out: { runId: string; status: string; events: number; start: number }[] = [];
  for await (const w of env.client.workflow.list({ query: `WorkflowId = '${id}'` })) {
    const handle = env.client.workflow.getHandle(id, w.runId);
    const [h, d] = await Promise.all([handle.fetchHistory(), handle.describe()]);
    out.push({ runId: w.runId, status: d.status.name, events: h.events?.length ?? 0, start: w.startTime.getTime() });
  }
  return out.sort((a, b) => a.start - b.start).map(({ runId, status, events }) => ({ runId, status, events }));
}

test('a run of many segments continues as new with its status, ledger and summary intact', { timeout: 10 * 60_000 }, async () => {
  process.env.FAKE_CRASH_AT_STEP = '7';
  try {
    const h = await pipeline.start({ configPath: 'configs/builtin-cpu.yaml', set: [...base, 'run.continue_as_new_after_events=20'] });
    const summary = (await h.result()) as Summary;
    assert.equal(summary.state, 'completed');
    assert.equal(summary.steps.completed, STEPS);
    // The list is a visibility copy, a moment behind the result: wait until it holds the completed execution.
    let runs = await executions(h.workflowId);
    for (const deadline = Date.now() + 15_000; runs.at(-1)?.status !== 'COMPLETED' && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 250));
      runs = await executions(h.workflowId);
    }
    assert.ok(runs.length >= 3, `continued as new at least twice: ${JSON.stringify(runs)}`);
    assert.ok(runs.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW') && runs.at(-1)!.status === 'COMPLETED', JSON.stringify(runs));
    // What the first execution learnt reaches the summary written by the last one.
    assert.ok(summary.baselineAccuracy !== null && summary.warmAccuracy !== null && summary.finalAccuracy !== null, JSON.stringify(summary));
    assert.equal(summary.ledger.length, 1, JSON.stringify(summary.ledger));
    assert.deepEqual([summary.ledger[0]!.type, summary.ledger[0]!.resumedFromStep], ['Unknown', 6]);
    const status = await h.query<RunStatus>('status');
    assert.equal(status.state, 'completed');
    assert.equal(status.step, STEPS);
    assert.ok(status.stages.every((s) => ['done', 'skipped'].includes(s.state)), JSON.stringify(status.stages));
    assert.equal(status.ledger.length, 1, 'the ledger crossed the boundaries');
    const onDisk = JSON.parse(readFileSync(join(pipeline.state, 'runs', h.workflowId, 'summary.json'), 'utf8')) as Summary;
    assert.equal(onDisk.ledger.length, 1);
    assert.equal(onDisk.startedAt, summary.startedAt, 'the run started when its first execution did');
    // Progress signals only on change: each step is at most a few signals, not one per poll.
    let signals = 0;
    for (const r of runs) {
      const hist = await env.client.workflow.getHandle(h.workflowId, r.runId).fetchHistory();
      signals += (hist.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
    }
    assert.ok(signals <= STEPS * 4, `${signals} progress signals for ${STEPS} steps`);
  } finally {
    delete process.env.FAKE_CRASH_AT_STEP;
  }
});

test('grpo resume continues a terminated run at its newest checkpoint and ends with the same steps', { timeout: 10 * 60_000 }, async () => {
  process.env.FAKE_STEP_SECONDS = '0.6';
  const address = env.connection.options.address;
  try {
    const h = await pipeline.start({ configPath: 'configs/builtin-cpu.yaml', set: base });
    const runDir = join(pipeline.state, 'runs', h.workflowId);
    // Terminate mid-training, once step_6 is checkpointed.
    for (let i = 0; i < 600; i++) {
      const s = await h.query<RunStatus>('status');
      if (s.checkpoints.some((c) => c.step >= 6)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const at = (await h.query<RunStatus>('status')).step;
    assert.ok(at >= 6 && at < STEPS, `terminated mid-training (step ${at})`);
    await h.terminate('test: the machine went away');
    const first = await h.describe();
    assert.equal(first.status.name, 'TERMINATED');
    // The old execution's trainer learns it at its next heartbeat and is stopped; what it left is the resume point.
    for (let i = 0; i < 300 && trainerRunning(runDir); i++) await new Promise((res) => setTimeout(res, 100));
    assert.ok(!trainerRunning(runDir), 'the terminated execution left no trainer running');
    const newest = Math.max(...readdirSync(join(runDir, 'checkpoints')).filter((n) => /^step_\d+$/.test(n)).map((n) => Number(n.slice(5))));
    const logOffset = statSync(join(runDir, 'logs', 'trainer.log')).size;

    const r = await cli(['resume', h.workflowId], { env: { TEMPORAL_ADDRESS: address }, timeoutMs: 5 * 60_000 });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`Resuming run ${h.workflowId} \\(the execution that ended terminated was ${first.runId}`));
    const summary = (await env.client.workflow.getHandle(h.workflowId).result()) as Summary;
    assert.equal(summary.state, 'completed');
    assert.equal(summary.steps.completed, STEPS, 'the same number of steps as an uninterrupted run');
    const trainerLog = readFileSync(join(runDir, 'logs', 'trainer.log'), 'utf8').slice(logOffset);
    const resumedFrom = Number(/resuming from step (\d+)/.exec(trainerLog)?.[1]);
    assert.equal(resumedFrom, newest, 'the new execution resumed from the newest complete checkpoint');
    assert.ok(newest >= 6);
    // Steps up to that checkpoint ran once; the new execution trained only what came after it.
    const trained = readFileSync(join(runDir, 'logs', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number }).filter((m) => m.kind === 'train').map((m) => m.step);
    for (let s = 1; s <= resumedFrom; s++) assert.equal(trained.filter((x) => x === s).length, 1, `step ${s} trained once: ${trained}`);
    assert.equal(Math.max(...trained), STEPS);
    const info = JSON.parse(readFileSync(join(runDir, 'checkpoints', `step_${STEPS}`, 'training_info.json'), 'utf8')) as { current_step: number };
    assert.equal(info.current_step, STEPS);
    const desc = await env.client.workflow.getHandle(h.workflowId).describe();
    assert.deepEqual(desc.memo?.resumedFrom, { executionRunId: first.runId, endedAs: 'TERMINATED' });

    // A completed run has nothing to resume; an unknown id is named.
    const done = await cli(['resume', h.workflowId], { env: { TEMPORAL_ADDRESS: address } });
    assert.equal(done.code, 2);
    assert.match(done.out, /completed; there is nothing to resume/);
    const missing = await cli(['resume', 'no-such-run-xyz'], { env: { TEMPORAL_ADDRESS: address } });
    assert.equal(missing.code, 2);
    assert.match(missing.out, /no run with id no-such-run-xyz/);
  } finally {
    delete process.env.FAKE_STEP_SECONDS;
  }
});

test('grpo resume refuses, naming what differs, when the config now gives another model', { timeout: 5 * 60_000 }, async () => {
  const address = env.connection.options.address;
  process.env.FAKE_FAIL_TYPE = 'InvalidConfig';
  let id: string;
  try {
    const h = await pipeline.start({ configPath: 'configs/builtin-cpu.yaml', set: [...base, 'eval.baseline=false', 'trainer.warm_start.enabled=false'] }, uniq('refuse'));
    id = h.workflowId;
    await h.result().catch(() => undefined);
    assert.equal((await h.describe()).status.name, 'FAILED');
  } finally {
    delete process.env.FAKE_FAIL_TYPE;
  }
  const r = await cli(['resume', id, '--set', 'model.source=smollm2-135m-instruct'], { env: { TEMPORAL_ADDRESS: address }, timeoutMs: 5 * 60_000 });
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /cannot continue: its checkpoints were made with a different model, modelFingerprint .*model: checkpoints tiny-random, config now smollm2-135m-instruct/);
});

test('search attributes: runs carry backend, model, config, state and best accuracy; grpo list filters by them', { timeout: 5 * 60_000 }, async () => {
  const h = await pipeline.start({ configPath: 'configs/builtin-cpu.yaml', set: [...base, 'trainer.grpo.max_num_steps=4', 'eval.baseline=false'] });
  await h.result();
  const desc = await h.describe();
  const sa = desc.searchAttributes as Record<string, unknown[]>;
  assert.deepEqual([sa.GrpoBackend, sa.GrpoModel, sa.GrpoConfig, sa.GrpoState], [['builtin'], ['tiny-random'], ['builtin-cpu'], ['completed']]);
  assert.ok(typeof sa.GrpoBestAccuracy?.[0] === 'number', JSON.stringify(sa));
  const address = env.connection.options.address;
  // Visibility is eventually consistent: wait until the run is listed under its attributes.
  let listed = '';
  for (let i = 0; i < 50 && !listed.includes(h.workflowId); i++) {
    const r = await cli(['list', '--json', '--state', 'completed', '--model', 'tiny-random', '--config', 'builtin-cpu'], { env: { TEMPORAL_ADDRESS: address } });
    assert.equal(r.code, 0, r.out);
    listed = r.stdout;
    if (!listed.includes(h.workflowId)) await new Promise((res) => setTimeout(res, 200));
  }
  assert.ok(listed.includes(h.workflowId), listed);
  const none = await cli(['list', '--json', '--backend', 'nemo_rl', '--model', 'tiny-random', '--config', 'builtin-cpu', '--state', 'completed'], { env: { TEMPORAL_ADDRESS: address } });
  assert.ok(!none.stdout.includes(h.workflowId), none.out);
});

test('init_from: promoted starts the next run from the promoted model, whose baseline evaluation is the comparison', { timeout: 5 * 60_000 }, async () => {
  const line = uniq('line');
  const short = [...base, 'trainer.grpo.max_num_steps=4', 'promotion.enabled=true', `promotion.line=${line}`];
  const first = (await (await pipeline.start({ configPath: 'configs/builtin-cpu.yaml', set: [...short, 'eval.baseline=false'] })).result()) as Summary;
  assert.equal(first.promotion?.promoted, true, JSON.stringify(first.promotion));
  const exported = first.promotion!.modelDir!;
  const h = await pipeline.start({ configPath: 'configs/builtin-cpu.yaml', set: [...short, 'init_from=promoted'] });
  const second = (await h.result()) as Summary;
  const status = await h.query<RunStatus>('status');
  const warm = status.stages.find((s) => s.name === 'warmStart')!;
  assert.equal(warm.state, 'skipped');
  assert.match(warm.detail ?? '', new RegExp(`promoted model ${first.runId} step 4`));
  assert.equal(status.baseline?.model, exported, 'the baseline evaluation is of the promoted model');
  const trainerLog = readFileSync(join(pipeline.state, 'runs', h.workflowId, 'logs', 'trainer.log'), 'utf8');
  assert.ok(trainerLog.includes(`policy.model_name=${exported}\n`), 'GRPO started from the promoted export');
  // The comparison reused the baseline evaluation instead of evaluating the promoted model again.
  assert.equal(second.promotion?.against, 'incumbent');
  assert.ok(!existsSync(join(pipeline.state, 'runs', h.workflowId, 'eval', 'promoted.json')));
});
