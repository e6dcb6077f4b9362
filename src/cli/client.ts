import { Client, Connection } from '@temporalio/client';
import { ConnectionConfigError, connectionOptions, serverTarget, unreachableMessage, type ServerTarget } from '../common/connection.js';
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

/** The connection settings (envconfig: profile file and TEMPORAL_* variables); unusable ones are a usage error (exit 2). */
export function cliTarget(): ServerTarget {
  try {
    return serverTarget();
  } catch (e) {
    if (e instanceof ConnectionConfigError) throw new CliError(e.message, 2);
    throw e;
  }
}

/** Unreachable server: a CliError with exit 3 and what to do about it. */
export class UnreachableError extends CliError {
  /** The connection error's first line. */
  readonly reason: string;
  constructor(
    readonly target: ServerTarget,
    cause: unknown,
  ) {
    super(unreachableMessage(target, cause), 3);
    this.reason = (cause as Error)?.message?.split('\n')[0] ?? String(cause);
  }
}

export async function connectClient(target: ServerTarget = cliTarget()): Promise<{ client: Client; connection: Connection; target: ServerTarget }> {
  let connection: Connection;
  try {
    connection = await Connection.connect(connectionOptions(target));
    await connection.workflowService.getSystemInfo({});
  } catch (e) {
    throw new UnreachableError(target, e);
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
