/** `grpo run`: validate a config, start its workflow, and follow it (Ctrl-C detaches). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { LoadedConfig } from '../../config/load.js';
import { redact } from '../../common/redact.js';
import { RUN_ID_PATTERN, TASK_QUEUE, WORKFLOW_TYPE, type RunStatus, type Summary, type TrainingRunInput } from '../../common/types.js';
import { stateDir } from '../../common/state.js';
import { webUiBase, workflowUrl } from '../../server/ui.js';
import { renderSummaryText } from '../../summary/text.js';
import { CliError, connectClient, pollerCount } from '../client.js';
import { flag, JSON_OPTION, list, required, SET_OPTION, str, type Command } from '../command.js';
import { progressLine, renderStatus } from '../follow.js';
import { loadOrExplain, newRunId, say, warn } from '../output.js';
import { trainerCheck } from './config.js';

export async function queryStatus(handle: WorkflowHandle): Promise<RunStatus | null> {
  try {
    return await handle.query<RunStatus>('status');
  } catch {
    return null;
  }
}

function readSummaryFile(runDir: string | null | undefined): string | null {
  if (!runDir) return null;
  const p = join(runDir, 'summary.txt');
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
}

/**
 * Follow a run until it closes. Ctrl-C detaches (the run goes on), or with onInterrupt 'cancel'
 * (the quickstart, which stops its worker afterwards) cancels the run and follows it until it is
 * recorded as cancelled; a second Ctrl-C then stops waiting. Returns the exit code.
 */
export async function follow(client: Client, runId: string, opts: { quietSummary?: boolean; onInterrupt?: 'detach' | 'cancel' } = {}): Promise<number> {
  const handle = client.workflow.getHandle(runId);
  const tty = process.stdout.isTTY;
  let detached = false;
  let cancelling = false;
  const onSignal = () => {
    if (opts.onInterrupt === 'cancel' && !cancelling) {
      cancelling = true;
      if (tty) process.stdout.write('\n');
      say(`Cancelling run ${runId}: its trainer and Ray head are stopped, then it is recorded as cancelled (Ctrl-C again stops waiting).`);
      handle.cancel().catch((e: Error) => warn(`Could not cancel ${runId}: ${e.message.split('\n')[0]}`));
      return;
    }
    detached = true;
  };
  const signals: NodeJS.Signals[] = opts.onInterrupt === 'cancel' ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM'];
  for (const sig of signals) process.on(sig, onSignal);
  let lastLine = '';
  let lastStage = '';
  try {
    for (;;) {
      if (detached) {
        if (tty) process.stdout.write('\n');
        if (cancelling) {
          say(`Stopped waiting for run ${runId} to be recorded as cancelled.`);
          return 130;
        }
        say(`Detached; run ${runId} keeps running. Follow it with: npm run grpo -- status ${runId}   (cancel: npm run grpo -- cancel ${runId})`);
        return 0;
      }
      const desc = await handle.describe();
      const s = await queryStatus(handle);
      if (s) {
        if (s.stage !== lastStage && !tty) say(`stage: ${s.stage}`);
        lastStage = s.stage;
        const line = progressLine(s);
        if (tty) process.stdout.write(`\r\x1b[2K${line}`);
        else if (line.replace(/\s+\S+$/, '') !== lastLine.replace(/\s+\S+$/, '')) say(line);
        lastLine = line;
      }
      if (desc.status.name !== 'RUNNING') {
        if (tty) process.stdout.write('\n');
        const final = (await queryStatus(handle)) ?? s;
        let summary: Summary | null = null;
        if (desc.status.name === 'COMPLETED') summary = (await handle.result()) as Summary;
        const text = readSummaryFile(final?.runDir) ?? (summary ? renderSummaryText(summary) : null);
        if (!opts.quietSummary) {
          if (text) say('\n' + text.trimEnd());
          else if (final) say(renderStatus(final, desc.status.name));
        }
        if (desc.status.name === 'FAILED') {
          try {
            await handle.result();
          } catch (e) {
            let c: { cause?: unknown; message?: string } = e as Error;
            while (c.cause && typeof c.cause === 'object') c = c.cause as typeof c;
            warn(`Run ${runId} failed: ${redact(c.message ?? String(e))}`);
          }
        }
        say(`Run ${runId}: workflow ${desc.status.name.toLowerCase()}${final?.runDir ? `; results in ${final.runDir}` : ''}`);
        return desc.status.name === 'COMPLETED' ? 0 : desc.status.name === 'CANCELLED' ? 130 : 1;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    for (const sig of signals) process.removeListener(sig, onSignal);
  }
}

/** Load and check a config as `grpo run` does: the pipeline's schema, then the trainer's check-config (usage error, exit 2). */
export async function loadRunConfig(path: string | undefined, sets: string[]): Promise<LoadedConfig> {
  const loaded = loadOrExplain(path, sets);
  for (const w of loaded.warnings) warn(`Warning: ${w}`);
  const check = await trainerCheck(loaded);
  if (!check.ok) throw new CliError(`Invalid trainer section (the trainer's check-config says):\n${check.output}`, 2);
  for (const w of check.warnings) warn(`Warning (trainer): ${w}`);
  return loaded;
}

/** The `trainingRun` input `grpo run` sends; without a run id the workflow derives it from its workflow id (schedules). */
export function trainingRunInput(loaded: LoadedConfig, runId?: string): TrainingRunInput {
  return { config: loaded.config, ...(runId ? { runId } : {}), ...(loaded.source ? { source: loaded.source } : {}) };
}

/** Warn when nobody polls the queue a run (or a schedule's fires) would wait on. */
export async function warnIfNoWorker(client: Client, namespace: string, what = 'the run waits'): Promise<void> {
  if ((await pollerCount(client, namespace)) === 0) warn(`Note: no worker is polling task queue ${TASK_QUEUE}; ${what} until one starts (npm run grpo -- worker).`);
}

export async function startRun(client: Client, loaded: LoadedConfig, runId: string, namespace: string): Promise<void> {
  await warnIfNoWorker(client, namespace);
  const input = trainingRunInput(loaded, runId);
  try {
    await client.workflow.start(WORKFLOW_TYPE, { taskQueue: TASK_QUEUE, workflowId: runId, args: [input] });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError)
      throw new CliError(`run id ${runId} already exists (see npm run grpo -- status ${runId}); pick another --run-id`, 2);
    throw e;
  }
}

export const run: Command = {
  name: 'run',
  brief: 'start a training run and follow it (Ctrl-C detaches)',
  args: '<config> [--set k=v]... [--run-id ID] [--detach]',
  summary: 'Validate the config, start the run and follow it with a progress line and live reward/accuracy. Ctrl-C detaches; the run keeps going.',
  details: ['Exit codes: 0 completed (or detached), 1 failed, 2 invalid config, 3 Temporal unreachable, 130 cancelled.'],
  options: {
    set: SET_OPTION,
    'run-id': { type: 'string', value: 'ID', help: 'the run id (default: run-<date>-<time>-<random>)' },
    detach: { type: 'boolean', help: 'start the run and return at once' },
    json: { ...JSON_OPTION, help: 'with --detach: print {runId, workflowType, taskQueue, namespace, webUiUrl?} as JSON' },
  },
  async run(p) {
    const path = required(this, p, 0, '<config>');
    const json = flag(p, 'json');
    if (json && !flag(p, 'detach')) throw new CliError('--json needs --detach (a followed run prints its progress, then its summary)', 2);
    const loaded = await loadRunConfig(path, list(p, 'set'));
    const runId = str(p, 'run-id') ?? newRunId();
    if (!RUN_ID_PATTERN.test(runId)) throw new CliError(`--run-id: expected letters, digits, '.', '_' or '-' (max 100), got ${JSON.stringify(runId)}`, 2);
    const { client, connection, target } = await connectClient();
    try {
      await startRun(client, loaded, runId, target.namespace);
      const ui = await webUiBase(target, stateDir());
      if (json) {
        say(JSON.stringify({ runId, workflowType: WORKFLOW_TYPE, taskQueue: TASK_QUEUE, namespace: target.namespace, ...(ui ? { webUiUrl: workflowUrl(ui, target.namespace, runId) } : {}) }, null, 2));
        return 0;
      }
      say(`Started run ${runId} (workflow ${WORKFLOW_TYPE} on task queue ${TASK_QUEUE}, namespace ${target.namespace}).`);
      if (ui) say(`Web UI: ${workflowUrl(ui, target.namespace, runId)}`);
      if (flag(p, 'detach')) {
        say(`Follow: npm run grpo -- status ${runId}    Cancel: npm run grpo -- cancel ${runId}`);
        return 0;
      }
      say('Following (Ctrl-C detaches; the run keeps going).');
      return await follow(client, runId);
    } finally {
      await connection.close();
    }
  },
};
