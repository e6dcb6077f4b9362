/** `grpo worker`: pino logs via Runtime.install, graceful shutdown, one training activity at a time. */
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { ConnectionConfigError, connectionOptions, serverTarget, unreachableMessage, type ServerTarget } from '../common/connection.js';
import { PinoTemporalLogger, createPino } from './logger.js';
import { createWorkers } from './index.js';
import { TASK_QUEUE, trainQueueFor } from '../common/types.js';
import { stateDir } from '../common/state.js';

export async function runWorkerMain(o: { maxTrainingActivities: number; shutdownGraceTime: string; taskQueue?: string }): Promise<number> {
  const p = createPino();
  Runtime.install({
    logger: new PinoTemporalLogger(p),
    telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) } },
  });
  let target: ServerTarget;
  try {
    target = serverTarget();
  } catch (e) {
    if (!(e instanceof ConnectionConfigError)) throw e;
    process.stderr.write(e.message + '\n');
    return 2;
  }
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(connectionOptions(target));
  } catch (e) {
    process.stderr.write(unreachableMessage(target, e) + '\n');
    return 3;
  }
  try {
    const taskQueue = o.taskQueue ?? TASK_QUEUE;
    const workers = await createWorkers({ connection, namespace: target.namespace, taskQueue, maxTrainingActivities: o.maxTrainingActivities, shutdownGraceTime: o.shutdownGraceTime });
    p.info(
      { address: target.address, namespace: target.namespace, taskQueues: [taskQueue, trainQueueFor(taskQueue)], maxTrainingActivities: o.maxTrainingActivities, stateDir: stateDir() },
      'grpo worker started',
    );
    await workers.run();
    p.info('grpo worker stopped');
    return 0;
  } finally {
    await connection.close();
  }
}
