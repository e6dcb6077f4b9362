/**
 * Workflow behaviour against a real Temporal dev server with the real activities. The trainer here
 * is the TEST DOUBLE (test/doubles/fake-trainer-TEST-DOUBLE) so timing is deterministic for
 * cancellation and crash/resume; the acceptance end-to-end test (e2e.test.ts) runs the real trainer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ROOT, TEMPORAL, uniq } from '../helpers.js';
import { startPipeline, type Pipeline } from '../support/pipeline.js';
import type { RunStatus, Summary } from '../../src/common/types.js';
import { isAlive, procCmdline } from '../../src/process/proc.js';

const run = promisify(execFile);

let pipeline: Pipeline;
let env: TestWorkflowEnvironment;
let taskQueue: string;
let TEST_STATE: string;

before(async () => {
  pipeline = await startPipeline('double', 'grpo-test');
  ({ env, taskQueue, state: TEST_STATE } = pipeline);
});
after(() => pipeline.stop());

const fast = [
  'model.source=tiny-random',
  'ray.enabled=false',
  'eval.limit=2',
  'trainer.grpo.max_num_steps=4',
  'run.segment_steps=2',
  'trainer.grpo.val_period=2',
  'trainer.checkpointing.save_period=2',
  'trainer.checkpointing.keep_top_k=1',
  'run.heartbeat_timeout_s=4',
];

function start(input: Record<string, unknown>, id = uniq('wf')) {
  return pipeline.start(input, id);
}

async function activityCount(id: string): Promise<number> {
  const h = await env.client.workflow.getHandle(id).fetchHistory();
  return (h.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
}

test('invalid workflow input fails at once with a non-retryable error naming the field', async () => {
  const h = await start({ configFile: 'configs/builtin-cpu.yaml' });
  const err = await h.result().then(
    () => assert.fail('should fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause as ApplicationFailure;
  assert.ok(cause instanceof ApplicationFailure);
  assert.equal(cause.type, 'InvalidInput');
  assert.equal(cause.nonRetryable, true);
  assert.match(cause.message, /configFile: unknown input field/);
  assert.equal(await activityCount(h.workflowId), 0, 'no activity was started');
});

test('an invalid inline config fails the workflow naming the field (no work started)', async () => {
  const cfg = (await import('yaml')).parse(readFileSync(join(ROOT, 'configs/builtin-cpu.yaml'), 'utf8'));
  cfg.trainer.checkpointing.keep_top_k = 0;
  const h = await start({ config: cfg });
  const err = (await h.result().catch((e: unknown) => e)) as WorkflowFailedError;
  const cause = err.cause as ApplicationFailure;
  assert.equal(cause.type, 'InvalidConfig');
  assert.equal(cause.nonRetryable, true);
  assert.match(cause.message, /trainer\.checkpointing\.keep_top_k: expected a number at least 1, got the integer 0/);
  assert.equal(await activityCount(h.workflowId), 1, 'only the config check ran');
  const status = await h.query<RunStatus>('status');
  assert.equal(status.state, 'failed');
  assert.equal(status.stages[0]!.state, 'failed');
});

test('the documented Temporal CLI commands start a run and query its status', async () => {
  const id = uniq('cli');
  const input = JSON.stringify({ configPath: 'configs/builtin-cpu.yaml', runId: id, set: fast });
  const address = env.connection.options.address;
  await run(TEMPORAL, ['workflow', 'start', '--address', address, '--type', 'trainingRun', '--task-queue', taskQueue, '--workflow-id', id, '--input', input], { cwd: ROOT });
  const summary = (await env.client.workflow.getHandle(id).result()) as Summary;
  assert.equal(summary.state, 'completed');
  assert.equal(summary.steps.completed, 4);
  const q = await run(TEMPORAL, ['workflow', 'query', '--address', address, '--workflow-id', id, '--name', 'status', '--output', 'json'], { cwd: ROOT });
  const parsed = JSON.parse(q.stdout) as { queryResult: RunStatus[] };
  const status = parsed.queryResult[0]!;
  assert.equal(status.state, 'completed');
  assert.equal(status.step, 4);
  assert.equal(status.totalSteps, 4);
  // keep_top_k=1 plus newest: step_4 is best and newest, step_2 removed
  assert.deepEqual(status.checkpoints.map((c) => c.step), [4]);
  assert.ok(status.baseline && status.final);
  assert.ok(status.stages.every((s) => ['done', 'skipped'].includes(s.state)), JSON.stringify(status.stages));
  assert.ok(existsSync(join(TEST_STATE, 'runs', id, 'summary.json')));
  const text = readFileSync(join(TEST_STATE, 'runs', id, 'summary.txt'), 'utf8');
  assert.match(text, /Validation accuracy \(95% CI, 4 tasks\): baseline 0\.100 \[0\.0\d+, 0\.\d+\] -> warm start 0\.125 \[[0-9.]+, [0-9.]+\] -> final 0\.\d+ \[/);
  // base -> warm -> GRPO: the warm start ran between the evaluations and GRPO started from its model
  const order = status.stages.map((s) => s.name);
  assert.ok(order.indexOf('baselineEval') < order.indexOf('warmStart') && order.indexOf('warmStart') < order.indexOf('train'));
  assert.equal(status.stages.find((s) => s.name === 'warmStart')!.state, 'done');
  const warmModel = status.warmStart!.model.modelDir;
  assert.match(warmModel, /\/warm\/[0-9a-f]{16}\/model$/);
  assert.equal(status.warm!.model, warmModel);
  assert.match(readFileSync(join(TEST_STATE, 'runs', id, 'logs', 'trainer.log'), 'utf8'), new RegExp(`policy\\.model_name=${warmModel}\n`));
  // a second run of the same model, data and settings finds the warm start done
  const again = (await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'eval.final=false'] }).then((h) => h.result())) as Summary;
  assert.equal(again.warmStart!.reused, true);
  assert.equal(again.warmStart!.model.modelDir, warmModel);
  assert.equal(again.warmAccuracy, null, 'no warm evaluation when evaluations are off');
});

test('a crashed training attempt is retried and resumes from the newest checkpoint', async () => {
  process.env.FAKE_CRASH_AT_STEP = '3';
  try {
    const h = await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'eval.final=false', 'recovery.backoff.initial_s=1'] });
    const summary = (await h.result()) as Summary;
    assert.equal(summary.state, 'completed');
    assert.equal(summary.steps.completed, 4);
    const status = await h.query<RunStatus>('status');
    assert.ok(status.failures.some((f) => f.stage === 'train' && f.type === 'Unknown'), JSON.stringify(status.failures));
    // The ledger: one Unknown failure (exit 1, no report), resumed from step_2, nothing lost, recovered.
    assert.equal(summary.ledger.length, 1, JSON.stringify(summary.ledger));
    const e = summary.ledger[0]!;
    assert.deepEqual([e.type, e.rule, e.resumedFromStep, e.stepsLost], ['Unknown', 'catch-all', 2, 0]);
    assert.ok(e.recoverySeconds !== null && e.recoverySeconds >= 0.5, `recovery measured (${e.recoverySeconds}s, includes the backoff)`);
    assert.equal(summary.recoveries, 1);
    const log = readFileSync(join(TEST_STATE, 'runs', h.workflowId, 'logs', 'trainer.log'), 'utf8');
    assert.match(log, /simulated crash/);
    assert.match(log, /resuming from step 2/, 'the retry resumed from step_2');
  } finally {
    delete process.env.FAKE_CRASH_AT_STEP;
  }
});

test('an OOM halves the micro batch, records the change and resumes', async () => {
  process.env.FAKE_OOM_ABOVE_MICRO_BATCH = '2';
  try {
    const h = await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'trainer.policy.train_micro_batch_size=4'] });
    const summary = (await h.result()) as Summary;
    assert.equal(summary.state, 'completed');
    assert.deepEqual(summary.configChanges, ['policy.train_micro_batch_size=2']);
    assert.deepEqual(summary.ledger.map((e) => [e.type, e.stage, e.stepsLost]), [['OutOfMemory', 'train', 0]]);
    assert.match(summary.ledger[0]!.action, /halved the training micro batch 4 -> 2/);
    const log = readFileSync(join(TEST_STATE, 'runs', h.workflowId, 'logs', 'trainer.log'), 'utf8');
    assert.match(log, /policy\.train_micro_batch_size=2/, 'the retry launched with the smaller micro batch');
    assert.match(readFileSync(join(TEST_STATE, 'runs', h.workflowId, 'summary.txt'), 'utf8'), /Recoveries: 1/);
  } finally {
    delete process.env.FAKE_OOM_ABOVE_MICRO_BATCH;
  }
});

test('an OOM with every knob at its bound fails the run with the reason', async () => {
  process.env.FAKE_OOM_ABOVE_MICRO_BATCH = '0';
  try {
    const h = await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'trainer.policy.train_micro_batch_size=1', 'trainer.grpo.val_batch_size=1'] });
    await h.result().then(() => assert.fail('should fail'), () => undefined);
    const status = await h.query<RunStatus>('status');
    assert.equal(status.state, 'failed');
    assert.match(status.ledger.at(-1)!.action, /^gave up: out of memory with every OOM knob already at its bound/);
  } finally {
    delete process.env.FAKE_OOM_ABOVE_MICRO_BATCH;
  }
});

test('a rate-limited model download waits Retry-After and retries', async () => {
  process.env.FAKE_RATE_LIMIT_ONCE = '1';
  try {
    const h = await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false', 'model.source=hf', `model.name=test/${uniq('m')}`] });
    const summary = (await h.result()) as Summary;
    assert.equal(summary.state, 'completed');
    assert.deepEqual(summary.ledger.map((e) => [e.type, e.stage, e.rule]), [['RateLimited', 'fetchModel', 'report-type']]);
    assert.match(summary.ledger[0]!.action, /waited 1s \(Retry-After\)/);
  } finally {
    delete process.env.FAKE_RATE_LIMIT_ONCE;
  }
});

test('a non-retryable trainer failure fails the run with its type, and cleanup still runs', async () => {
  process.env.FAKE_FAIL_TYPE = 'InvalidData';
  try {
    const h = await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'eval.baseline=false'] });
    const err = (await h.result().catch((e: unknown) => e)) as WorkflowFailedError;
    assert.ok(err instanceof WorkflowFailedError);
    const status = await h.query<RunStatus>('status');
    assert.equal(status.state, 'failed');
    assert.equal(status.stages.find((s) => s.name === 'train')!.state, 'failed');
    assert.equal(status.attempts.train, 1, 'InvalidData is not retried');
    assert.ok(status.failures.some((f) => f.type === 'InvalidData'));
    const summary = JSON.parse(readFileSync(join(TEST_STATE, 'runs', h.workflowId, 'summary.json'), 'utf8')) as Summary;
    assert.equal(summary.state, 'failed');
    assert.equal(status.stages.find((s) => s.name === 'cleanup')!.state, 'done');
  } finally {
    delete process.env.FAKE_FAIL_TYPE;
  }
});

test('cancelling a run stops the trainer process group and Ray, then records it as cancelled', async () => {
  process.env.FAKE_STEP_SECONDS = '3';
  const h = await start({ configPath: 'configs/builtin-cpu.yaml', set: [...fast, 'ray.enabled=true', 'eval.baseline=false', 'trainer.grpo.max_num_steps=40', 'run.segment_steps=40'] });
  try {
    const runDir = join(TEST_STATE, 'runs', h.workflowId);
    let trainerPid = 0;
    for (let i = 0; i < 240 && !trainerPid; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const pidFile = join(runDir, 'checkpoints', 'trainer.pid');
      if (existsSync(pidFile)) trainerPid = (JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }).pid;
    }
    assert.ok(trainerPid > 0, 'trainer started');
    const ray = JSON.parse(readFileSync(join(runDir, 'ray.json'), 'utf8')) as { pid: number; tempDir: string };
    assert.ok(isAlive(ray.pid), 'ray head running during training');
    await h.cancel();
    const err = (await h.result().catch((e: unknown) => e)) as WorkflowFailedError;
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof CancelledFailure);
    assert.ok(!isAlive(trainerPid) || !procCmdline(trainerPid).includes(runDir), 'trainer process group stopped');
    assert.ok(!isAlive(ray.pid), 'ray head stopped');
    assert.ok(!existsSync(ray.tempDir), 'ray temp dir removed');
    const status = await h.query<RunStatus>('status');
    assert.equal(status.state, 'cancelled');
    assert.equal(status.stages.find((s) => s.name === 'train')!.state, 'cancelled');
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as Summary;
    assert.equal(summary.state, 'cancelled');
    assert.ok(!existsSync(join(runDir, 'checkpoints', '.grpo.lock')), 'lock released');
  } finally {
    delete process.env.FAKE_STEP_SECONDS;
    // A failed assertion must not leave a 40-step run (and its Ray head) behind the test.
    await h.cancel().catch(() => undefined);
  }
});
