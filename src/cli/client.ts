import { Client, Connection } from '@temporalio/client';
import { connectionOptions, serverTarget, unreachableMessage, type ServerTarget } from '../common/connection.js';
import { TASK_QUEUE } from '../common/types.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export async function connectClient(target: ServerTarget = serverTarget()): Promise<{ client: Client; connection: Connection; target: ServerTarget }> {
  let connection: Connection;
  try {
    connection = await Connection.connect(connectionOptions(target));
    await connection.workflowService.getSystemInfo({});
  } catch (e) {
    throw new CliError(unreachableMessage(target, e), 3);
  }
  return { client: new Client({ connection, namespace: target.namespace }), connection, target };
}

/** Number of workers polling the pipeline's task queue (0 → nobody will run the workflow). */
export async function pollerCount(client: Client, namespace: string, queue = TASK_QUEUE): Promise<number> {
  try {
    const r = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: queue }, taskQueueType: 1 });
    return r.pollers?.length ?? 0;
  } catch {
    return -1;
  }
}
