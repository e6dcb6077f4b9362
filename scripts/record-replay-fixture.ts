/**
 * Regenerate test/fixtures/trainingRun-history.json: one short run (with a crashed-and-retried
 * segment, so the history has retries, signals and bookkeeping) recorded with
 * `temporal workflow show --output json`. Uses the trainer TEST DOUBLE for speed.
 *   node --import tsx scripts/record-replay-fixture.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FAKE_TRAINER, ROOT, STATE, TEMPORAL, testEnv } from '../test/helpers.js';
import { createWorkers } from '../src/worker/index.js';

const state = mkdtempSync(join(tmpdir(), 'grpo-record-'));
mkdirSync(join(STATE, 'envs'), { recursive: true });
symlinkSync(join(STATE, 'envs'), join(state, 'envs'));
process.env.GRPO_STATE_DIR = state;
process.env.GRPO_TRAINER_DIR = FAKE_TRAINER;
process.env.FAKE_CRASH_AT_STEP = '3';

const env = await testEnv();
const taskQueue = 'grpo-record';
const workers = await createWorkers({ connection: env.nativeConnection, taskQueue });
const running = workers.run();
const workflowId = 'replay-fixture';
try {
  const set = ['recovery.backoff.initial_s=1', 'model.source=tiny-random', 'ray.enabled=false', 'eval.limit=2', 'trainer.grpo.max_num_steps=4', 'run.segment_steps=2', 'trainer.grpo.val_period=2', 'trainer.checkpointing.save_period=2', 'run.heartbeat_timeout_s=4'];
  await env.client.workflow.execute('trainingRun', { taskQueue, workflowId, args: [{ configPath: 'configs/builtin-cpu.yaml', runId: workflowId, set }] });
  const json = execFileSync(TEMPORAL, ['workflow', 'show', '--address', env.connection.options.address, '--workflow-id', workflowId, '--output', 'json'], { cwd: ROOT });
  const out = join(ROOT, 'test', 'fixtures', 'trainingRun-history.json');
  writeFileSync(out, json);
  console.log(`wrote ${out}`);
} finally {
  workers.shutdown();
  await running;
  await env.teardown();
  rmSync(state, { recursive: true, force: true });
}
