/**
 * Benchmark (not a test): how fast a run's workflow history grows, so long runs stay under
 * Temporal's limits (warning at 10,240 events per execution, termination at 51,200).
 * Runs the real trainer (default: tiny-random model, the CPU config's segment and checkpoint
 * cadence, 12 steps, no evaluations) through a real dev server and an in-process worker, then
 * counts the events of every execution of the run: in total, per training step, signals per step.
 *   node --import tsx scripts/bench-history.ts [--set k=v]...
 * Prints JSON.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { REPO_ROOT, stateDir } from '../src/common/state.js';
import { freeLocalPort, startDevServer } from '../src/server/index.js';
import { createWorkers } from '../src/worker/index.js';
import type { Summary } from '../src/common/types.js';

const { values } = parseArgs({ options: { set: { type: 'string', multiple: true } } });
const sets = [
  'model.source=tiny-random',
  'ray.enabled=false',
  'eval.baseline=false',
  'eval.final=false',
  'trainer.warm_start.enabled=false',
  'trainer.grpo.max_num_steps=12',
  ...(values.set ?? []),
];

const port = await freeLocalPort();
const server = await startDevServer({ state: stateDir(), port, headless: true, dbFile: null, stdio: 'ignore' });
const address = `127.0.0.1:${port}`;
try {
  const native = await NativeConnection.connect({ address });
  const taskQueue = `bench-history-${Date.now()}`;
  const workers = await createWorkers({ connection: native, taskQueue, shutdownGraceTime: '5s' });
  const running = workers.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const id = `bench-history-${Date.now()}`;
  const started = Date.now();
  const handle = await client.workflow.start('trainingRun', { taskQueue, workflowId: id, args: [{ configPath: join(REPO_ROOT, 'configs', 'builtin-cpu.yaml'), set: sets }] });
  const summary = (await handle.result()) as Summary;
  const wall = (Date.now() - started) / 1000;
  const executions: { status: string; events: number; signals: number; trainEvents: number }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${id}'` })) {
    const events = (await client.workflow.getHandle(id, w.runId).fetchHistory()).events ?? [];
    // Training: from the first trainSegment scheduled to the last one completed.
    const idx = events.map((e, i) => (e.activityTaskScheduledEventAttributes?.activityType?.name === 'trainSegment' ? i : -1)).filter((i) => i >= 0);
    const lastDone = events.reduce((a, e, i) => (e.activityTaskCompletedEventAttributes ? i : a), -1);
    executions.push({
      status: w.status.name,
      events: events.length,
      signals: events.filter((e) => e.workflowExecutionSignaledEventAttributes).length,
      trainEvents: idx.length ? lastDone - idx[0]! + 1 : 0,
    });
  }
  const steps = summary.steps.completed;
  const trainEvents = executions.reduce((a, e) => a + e.trainEvents, 0);
  const signals = executions.reduce((a, e) => a + e.signals, 0);
  process.stdout.write(
    JSON.stringify(
      {
        config: 'configs/builtin-cpu.yaml',
        set: sets,
        steps,
        wallSeconds: wall,
        executions,
        eventsTotal: executions.reduce((a, e) => a + e.events, 0),
        trainingEventsPerStep: Math.round((trainEvents / steps) * 100) / 100,
        signalsPerStep: Math.round((signals / steps) * 100) / 100,
      },
      null,
      2,
    ) + '\n',
  );
  workers.shutdown();
  await running;
  await connection.close();
  await native.close();
} finally {
  server.kill('SIGTERM');
}
