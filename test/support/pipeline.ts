/**
 * The pipeline under test: a real dev server, the real workflow and activities on a task queue of
 * their own, with the real trainer or its TEST DOUBLE (test/doubles/fake-trainer-TEST-DOUBLE).
 * The end-to-end and workflow tests start it the same way.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createWorkers } from '../../src/worker/index.js';
import { FAKE_TRAINER, STATE, testEnv, uniq } from '../helpers.js';

export interface Pipeline {
  env: TestWorkflowEnvironment;
  taskQueue: string;
  /** The state dir runs write to. */
  state: string;
  start(input: Record<string, unknown>, id?: string): Promise<WorkflowHandle>;
  stop(): Promise<void>;
}

/**
 * `real`: the checkout's trainer and the shared state dir (its model and data caches).
 * `double`: the trainer's test double in a state dir of its own (the double's fake models and data
 * must never land in the real caches), sharing the real environments so nothing is rebuilt.
 */
export async function startPipeline(trainer: 'real' | 'double', name: string): Promise<Pipeline> {
  let state = STATE;
  if (trainer === 'double') {
    process.env.GRPO_TRAINER_DIR = FAKE_TRAINER;
    state = mkdtempSync(join(tmpdir(), 'grpo-wf-state-'));
    mkdirSync(join(STATE, 'envs'), { recursive: true });
    symlinkSync(join(STATE, 'envs'), join(state, 'envs'));
  } else delete process.env.GRPO_TRAINER_DIR;
  process.env.GRPO_STATE_DIR = state;
  const env = await testEnv();
  const taskQueue = uniq(name);
  const workers = await createWorkers({ connection: env.nativeConnection, taskQueue, shutdownGraceTime: '5s' });
  const running = workers.run();
  return {
    env,
    taskQueue,
    state,
    start: (input, id = uniq('wf')) => env.client.workflow.start('trainingRun', { taskQueue, workflowId: id, args: [input] }),
    async stop() {
      workers.shutdown();
      await running;
      await env.teardown();
      if (trainer === 'double' && !process.env.GRPO_KEEP_TEST_STATE) rmSync(state, { recursive: true, force: true });
    },
  };
}
