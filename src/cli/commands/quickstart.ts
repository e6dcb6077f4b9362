/**
 * `grpo quickstart` (what `npm run quickstart` runs): install what is missing, start a dev server
 * with its Web UI and a worker unless they run, run a config end to end, stop what it started.
 * Ctrl-C while it runs what it started: the run is cancelled (its trainer and Ray stopped) and
 * recorded as cancelled before the worker and server stop, so no run is left without a worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { REPO_ROOT, runPaths, serverDir, stateDir } from '../../common/state.js';
import { TASK_QUEUE, WORKFLOW_TYPE } from '../../common/types.js';
import { PortBusyError, ensureTemporalBin, portFree, startDevServer, tcpReachable } from '../../server/index.js';
import { startDevServerWithUi, webUiLine } from '../../server/ui.js';
import { GRPO_BIN, workerSpawnEnv } from '../../worker/paths.js';
import { CliError, cliTarget, connectClient, pollerCount } from '../client.js';
import { list, SET_OPTION, str, type Command } from '../command.js';
import { loadOrExplain, newRunId, say, warn } from '../output.js';
import { follow, startRun } from './run.js';

// Measured from fresh clones of the shipped CPU config (README has the runs).
const SHIPPED_CONFIG_DURATION = '1¼ to 2½ hours on 2 CPU cores';
const DEFAULT_CONFIG = 'configs/builtin-cpu.yaml';

/**
 * What the quickstart says when it has started a run: its stages, and the default config's measured duration,
 * which says nothing about another config (the GPU config ran in 13 minutes).
 */
export function startedLine(runId: string, configPath: string, warmStart: boolean, steps: number): string {
  const duration = resolve(REPO_ROOT, configPath) === resolve(REPO_ROOT, DEFAULT_CONFIG) ? ` (the shipped config: ${SHIPPED_CONFIG_DURATION})` : '';
  return `Started run ${runId}: environment build (first time: a few minutes), data, model conversion, Ray, baseline eval, ${warmStart ? 'warm start and its eval, ' : ''}${steps} GRPO steps, final eval, summary${duration}.`;
}

/**
 * Start the pipeline worker as a child process (logs to a file); resolves when it polls. It gets a
 * process group of its own, so a Ctrl-C on the terminal reaches only the quickstart, which decides.
 */
export async function spawnWorker(client: Client, namespace: string, logFile: string, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const fd = openSync(logFile, 'a');
  const child = spawn(GRPO_BIN, ['worker'], { stdio: ['ignore', fd, fd], env: workerSpawnEnv({ ...env, GRPO_LOG_FORMAT: 'json' }), detached: true });
  closeSync(fd);
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (exited) throw new CliError(`the worker exited during startup; see ${logFile}`, 1);
    if ((await pollerCount(client, namespace)) > 0) return child;
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGTERM');
  throw new CliError(`the worker did not start polling within 120s; see ${logFile}`, 1);
}

async function stopChild(child: ChildProcess | null, name: string, graceMs = 60_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
  say(`Stopped the ${name} this quickstart started.`);
}

/** A run an earlier quickstart started that is still open (its quickstart was killed): followed instead of starting another. */
async function openQuickstartRun(client: Client): Promise<string | null> {
  try {
    for await (const w of client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH 'quickstart-'` })) return w.workflowId;
  } catch {
    /* a server without STARTS_WITH: start a new run */
  }
  return null;
}

export const quickstart: Command = {
  name: 'quickstart',
  brief: 'install, start server/worker if needed, run the default config',
  args: '[--set k=v]... [--config FILE] [--run-id ID]',
  summary:
    'What `npm run quickstart` runs after `npm ci`: install what is missing, start a dev server (with its Web UI) and a worker unless they run, ' +
    `run ${DEFAULT_CONFIG} end to end with BFCL before/after (${SHIPPED_CONFIG_DURATION}), print the Web UI link and where the results are, and stop what it started.`,
  details: [
    'Ctrl-C: when the quickstart started the worker or the server, the run is cancelled (its trainer and Ray head stopped, summary and',
    'cleanup still run) and the quickstart waits until it is recorded as cancelled before stopping them; a second Ctrl-C stops at once.',
    'When both were already running, Ctrl-C only detaches: the run goes on with that worker.',
    'A quickstart run left open by a killed quickstart is followed again instead of starting a second one (unless --run-id is given).',
  ],
  options: {
    set: SET_OPTION,
    config: { type: 'string', value: 'FILE', default: DEFAULT_CONFIG, help: 'the config to run' },
    'run-id': { type: 'string', value: 'ID', help: 'the run id (default quickstart-<date>-<time>)' },
  },
  async run(p) {
    // The quickstart shows BFCL before/after in its report (user --set values come later and win).
    const loaded = loadOrExplain(resolve(REPO_ROOT, str(p, 'config')!), ['bfcl.enabled=true', ...list(p, 'set')]);
    for (const w of loaded.warnings) warn(`Warning: ${w}`);
    const state = stateDir(loaded.config.state_dir);
    const target = cliTarget();
    let server: ChildProcess | null = null;
    let worker: ChildProcess | null = null;
    let connection: { close(): Promise<void> } | null = null;
    const cleanup = async () => {
      await stopChild(worker, 'worker');
      await connection?.close().catch(() => undefined);
      await stopChild(server, 'Temporal dev server', 15_000);
    };
    // Until the run is followed, a signal stops what was started so far.
    const onSetupSignal = () => {
      warn('\nInterrupted before the run started; stopping what the quickstart started.');
      void cleanup().finally(() => process.exit(130));
    };
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const s of signals) process.on(s, onSetupSignal);
    const setupDone = () => signals.forEach((s) => process.removeListener(s, onSetupSignal));
    try {
      say(`State dir: ${state}`);
      await ensureTemporalBin(state, say);
      if (!(await tcpReachable(target.address))) {
        if (!target.isLocal) throw new CliError(`Cannot reach the Temporal server at ${target.address}; quickstart only starts a local one (unset TEMPORAL_ADDRESS / TEMPORAL_PROFILE).`, 3);
        const i = target.address.lastIndexOf(':');
        const host = target.address.slice(0, i).replace(/^\[|\]$/g, '');
        const [ip, port] = [host === 'localhost' ? '127.0.0.1' : host, Number(target.address.slice(i + 1))];
        const logFile = join(serverDir(state), 'server.log');
        // detached: the server's process group is its own, so Ctrl-C reaches only the quickstart.
        const o = { state, ip, port, stdio: { logFile }, detached: true };
        try {
          if (await portFree(port + 1000, ip)) {
            say(`Starting a Temporal dev server on ${target.address} with its Web UI on port ${port + 1000} (log ${logFile})`);
            server = (await startDevServerWithUi(o)).child;
          } else {
            say(`Starting a Temporal dev server on ${target.address} without its Web UI (port ${port + 1000} is busy; log ${logFile})`);
            server = await startDevServer({ ...o, headless: true });
          }
        } catch (e) {
          if (e instanceof PortBusyError) throw new CliError(e.message, 3);
          throw e;
        }
      } else say(`Using the Temporal server already running at ${target.address}`);
      const c = await connectClient(target);
      connection = c.connection;
      const client = c.client;
      if ((await pollerCount(client, target.namespace)) > 0) say(`Using the worker already polling task queue ${TASK_QUEUE}`);
      else {
        const logFile = join(state, 'worker.log');
        say(`Starting a worker (log ${logFile})`);
        worker = await spawnWorker(client, target.namespace, logFile);
      }
      const earlier = str(p, 'run-id') ? null : await openQuickstartRun(client);
      const runId = earlier ?? str(p, 'run-id') ?? `quickstart-${newRunId().slice(4)}`;
      if (earlier) say(`Run ${runId}, started by an earlier quickstart, is still open: following it instead of starting another (npm run grpo -- cancel ${runId} stops it).`);
      else {
        await startRun(client, loaded, runId, target.namespace);
        say(startedLine(runId, str(p, 'config')!, !!loaded.config.trainer.warm_start?.enabled, loaded.config.trainer.grpo.max_num_steps));
      }
      const ui = await webUiLine(target, state, runId);
      if (ui) say(ui);
      const owned = !!(worker || server);
      say(owned ? 'Ctrl-C cancels the run (its trainer and Ray are stopped), waits until it is recorded as cancelled, then stops the worker and server this quickstart started.' : 'Ctrl-C detaches (the run goes on with the worker already running).');
      setupDone();
      const code = await follow(client, runId, { onInterrupt: owned ? 'cancel' : 'detach' });
      const paths = runPaths(state, runId);
      if (existsSync(paths.summaryJson)) say(`\nResults: ${paths.runDir}\n  summary: ${paths.summaryText}\n  report: ${join(paths.runDir, 'report', 'report.html')}\n  checkpoints: ${paths.checkpointDir}\n  logs: ${paths.logDir}`);
      const open = await client.workflow.getHandle(runId).describe().then((d) => d.status.name === 'RUNNING', () => false);
      if (owned && open)
        warn(`Run ${runId} is still open on the server (${server ? `its database ${join(serverDir(state), 'dev.db')}` : target.address}): it goes on when a server and a worker run again (npm run quickstart follows it), or stop it then with: npm run grpo -- cancel ${runId}`);
      return code;
    } finally {
      setupDone();
      await cleanup();
    }
  },
};
