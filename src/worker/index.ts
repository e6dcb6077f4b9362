/**
 * Worker: registers the workflow and activities on two task queues.
 *  - TASK_QUEUE: workflows + light activities (config, env, data, model, Ray, bookkeeping, summary)
 *  - TRAIN_TASK_QUEUE: training and evaluation, at most `maxTrainingActivities` (default 1) at a time
 */
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import * as realActivities from '../activities/index.js';
import { TASK_QUEUE, trainQueueFor } from '../common/types.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface PipelineWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  maxTrainingActivities?: number;
  shutdownGraceTime?: string | number;
  activities?: object;
  workflowBundle?: WorkflowBundle;
}

let bundlePromise: Promise<WorkflowBundle> | null = null;
/** Bundle the workflow code once per process. */
export function workflowBundle(): Promise<WorkflowBundle> {
  bundlePromise ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never });
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
      await Promise.all([main.run(), train.run()]);
    },
    shutdown() {
      for (const w of [main, train]) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
