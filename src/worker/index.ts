/**
 * Worker: registers the workflow and activities on two task queues.
 *  - TASK_QUEUE: workflows + light activities (config, env, data, model, Ray, bookkeeping, summary)
 *  - TRAIN_TASK_QUEUE: training and evaluation, at most `maxTrainingActivities` (default 1) at a time
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { runCommand } from '../common/exec.js';
import { BUNDLER_PATH } from './paths.js';
import * as realActivities from '../activities/index.js';
import { stopPausedTrainers } from '../process/handoff.js';
import { TASK_QUEUE, trainQueueFor } from '../common/types.js';

export { WORKFLOWS_PATH } from './paths.js';

export interface PipelineWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  maxTrainingActivities?: number;
  shutdownGraceTime?: string | number;
  activities?: object;
  workflowBundle?: WorkflowBundleOption;
}

let bundlePromise: Promise<WorkflowBundleOption> | null = null;
/** Bundle the workflow code once per process, in a child process (see bundle.ts for why). */
export function workflowBundle(): Promise<WorkflowBundleOption> {
  bundlePromise ??= (async () => {
    const codePath = join(mkdtempSync(join(tmpdir(), 'grpo-workflow-bundle-')), 'workflows.js');
    const r = await runCommand([process.execPath, '--import', 'tsx', BUNDLER_PATH, codePath], { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`bundling the workflow code failed (exit ${r.code}): ${r.output.slice(-2000)}`);
    return { codePath };
  })();
  return bundlePromise;
}

export interface PipelineWorkers {
  main: Worker;
  train: Worker;
  run(): Promise<void>;
  shutdown(): void;
}

export async function createWorkers(o: PipelineWorkerOptions): Promise<PipelineWorkers> {
  const activities = o.activities ?? realActivities;
  const common = {
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    shutdownGraceTime: o.shutdownGraceTime ?? '30s',
    shutdownForceTime: '2 minutes' as const,
  };
  const bundle = o.workflowBundle ?? (await workflowBundle());
  const main = await Worker.create({
    ...common,
    taskQueue: o.taskQueue ?? TASK_QUEUE,
    workflowBundle: bundle,
    activities,
    maxConcurrentActivityTaskExecutions: 20,
  });
  const train = await Worker.create({
    ...common,
    taskQueue: trainQueueFor(o.taskQueue ?? TASK_QUEUE),
    activities,
    maxConcurrentActivityTaskExecutions: o.maxTrainingActivities ?? 1,
  });
  return {
    main,
    train,
    async run() {
      try {
        await Promise.all([main.run(), train.run()]);
      } finally {
        // Trainers paused between segments would otherwise wait out their handoff timeout with
        // their memory held; each is at a complete checkpoint, so the next segment loses nothing.
        await stopPausedTrainers();
      }
    },
    shutdown() {
      for (const w of [main, train]) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
