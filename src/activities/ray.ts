/**
 * The Ray stage: a private, token-authenticated, loopback-only Ray head per run (src/ray/head.ts),
 * or a check of the user's own cluster (`ray.address`). Restart after a Ray failure gives the new
 * head a new token; cleanup stops the head and removes its token.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { ApplicationFailure } from '@temporalio/activity';
import { getBackend } from '../backends/index.js';
import type { CommandSpec } from '../backends/types.js';
import { runCommand } from '../common/exec.js';
import type { EnvInfo, RayInfo, ResolvedRun } from '../common/types.js';
import { clusterClientEnv, headArgv, headEnv, RAY_HEAD, rayTokenPath, removeRayToken, USER_RAY_TOKEN_ENV, writeRayToken } from '../ray/head.js';
import { rayInfoPath, stopRunRay } from '../ray/stop.js';
import { childEnv, groupAlive, procCmdline, spawnToLog, tailFile, type ProcessExit } from '../process/proc.js';
import { backendCtx } from './support.js';
import { cancellationSignal, confirmCancel, heartbeat, log } from '../common/activity-context.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function pick(o: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]!]));
}

function rayTempDir(run: ResolvedRun): string {
  // Short path: Ray's unix sockets live under it (108-byte limit).
  return `/tmp/grpo-ray-${createHash('sha256').update(run.paths.runDir).digest('hex').slice(0, 10)}`;
}

export function parseRayStatus(text: string): { cpus: number; gpus: number } {
  const cpu = /([\d.]+)\/([\d.]+)\s+CPU\b/.exec(text);
  const gpu = /([\d.]+)\/([\d.]+)\s+GPU\b/.exec(text);
  return { cpus: cpu ? Number(cpu[2]) : 0, gpus: gpu ? Number(gpu[2]) : 0 };
}

/** `ray status` as a client of `ray` sees the cluster (`clientEnv`: its auth settings, secrets included). */
async function rayStatus(rayBin: string, address: string, clientEnv: NodeJS.ProcessEnv): Promise<{ ok: boolean; text: string }> {
  const r = await runCommand([rayBin, 'status', '--address', address], { timeoutMs: 20_000, env: { ...clientEnv, RAY_ADDRESS: address } });
  return { ok: r.code === 0, text: r.output };
}

const infoPath = (run: ResolvedRun) => rayInfoPath(run.paths.runDir);

/** A head that ended before it was ready, said as such (null while it runs). */
function exitedHow(exited: ProcessExit | null): string | null {
  if (!exited) return null;
  return `Ray head exited (${exited.signal ? `signal ${exited.signal}` : `code ${exited.code}`}) before it was ready`;
}

/** The GPUs CUDA shows the trainer environment on this machine, as the head's workers would see them (null: cannot tell). */
async function visibleGpus(env: EnvInfo): Promise<number | null> {
  const hb = setInterval(() => heartbeat({ stage: 'startRay', probing: 'GPUs' }), 1000);
  try {
    const r = await runCommand([env.python, '-c', 'import torch; print(torch.cuda.device_count())'], { timeoutMs: 180_000, env: childEnv({ label: '', argv: [], cwd: '', env: {}, passEnv: [] }) });
    const n = Number(r.output.trim().split('\n').at(-1));
    return r.code === 0 && Number.isInteger(n) ? n : null;
  } finally {
    clearInterval(hb);
  }
}

/** Start the run's Ray head (or reuse it while it is up), or check the user's cluster; wait for the resources. */
export async function startRay(input: { run: ResolvedRun; env: EnvInfo }): Promise<RayInfo> {
  const { run, env } = input;
  if (run.config.ray.address) return checkUserCluster(run, env);
  const want = { cpus: run.config.ray.num_cpus, gpus: run.config.ray.num_gpus };
  const rayBin = join(env.envDir, 'bin', 'ray');
  const tokenPath = rayTokenPath(run.paths.runDir);
  if (existsSync(infoPath(run))) {
    const prev = JSON.parse(await readFile(infoPath(run), 'utf8')) as RayInfo;
    if (groupAlive(prev.pid) && procCmdline(prev.pid).includes(prev.tempDir) && prev.authTokenPath && existsSync(prev.authTokenPath)) {
      const t = setInterval(() => heartbeat({ stage: 'startRay', address: prev.address }), 1000);
      const s = parseRayStatus((await rayStatus(rayBin, prev.address, childEnv({ label: '', argv: [], cwd: '', env: headEnv(prev.authTokenPath), passEnv: [] })).finally(() => clearInterval(t))).text);
      if (s.cpus >= want.cpus && s.gpus >= want.gpus) return prev; // idempotent: our head is still up
    }
    await stopRunRay(run.paths.runDir);
  }
  if (want.gpus > 0) {
    // `ray start --num-gpus=N` advertises N GPUs whether or not they exist; the trainer would find out only after
    // the evaluations and the warm start had run on the CPU, and no retry gives a machine GPUs.
    const seen = await visibleGpus(env);
    if (seen !== null && seen < want.gpus)
      throw ApplicationFailure.create({
        type: 'InvalidConfig',
        nonRetryable: true,
        message: `ray.num_gpus=${want.gpus}, but CUDA sees ${seen} GPU(s) on this machine (torch.cuda.device_count() in the trainer environment ${env.envDir}). Run on a machine with ${want.gpus} GPU(s), or --set ray.num_gpus=${seen}${seen === 0 ? ' (configs/builtin-cpu.yaml is sized for a CPU)' : ''}.`,
      });
  }
  // Distinct: started together, every server binds before any closes (the binds are queued ahead of the
  // 'listening' callbacks that close them; 500 at once never repeated a port here). One at a time, ports repeat.
  const ports = await Promise.all(RAY_HEAD.port_flags.map(freePort));
  const tempDir = rayTempDir(run);
  await rm(tempDir, { recursive: true, force: true });
  await mkdir(tempDir, { recursive: true });
  // Every head gets a token of its own: a head restarted after a Ray failure never reuses one.
  await writeRayToken(tokenPath);
  const address = `127.0.0.1:${ports[0]}`;
  const spec: CommandSpec = {
    label: 'ray head',
    argv: headArgv(rayBin, { ports, tempDir, numCpus: want.cpus, numGpus: want.gpus }),
    cwd: run.paths.runDir,
    // Ray workers inherit the head's environment: give them the trainer's import path.
    env: { ...headEnv(tokenPath), ...pick(getBackend(run.config.backend).launch(backendCtx(run, { env }), 1).env, ['PYTHONPATH', 'HF_HUB_OFFLINE']) },
    passEnv: [],
  };
  const child = spawnToLog(spec, join(run.paths.logDir, 'ray.log'), {}, `ray head: ${spec.argv.join(' ')}`);
  if (child.pid < 0) {
    // No Ray to restart: the environment lacks a runnable `ray`, which no retry of this stage mends.
    const { error } = await child.exit;
    await removeRayToken(tokenPath);
    throw ApplicationFailure.create({
      type: 'BackendUnavailable',
      nonRetryable: true,
      message: `could not start the Ray head: ${error}. The trainer environment ${env.envDir} has no runnable \`ray\`; rebuild it (--set environment.force_rebuild=true).`,
    });
  }
  const info: RayInfo = { address, pid: child.pid, tempDir, numCpus: want.cpus, numGpus: want.gpus, authTokenPath: tokenPath };
  // Atomically: status readers, cleanup and operators may read ray.json at any moment.
  await writeFile(`${infoPath(run)}.tmp`, JSON.stringify(info, null, 2));
  await rename(`${infoPath(run)}.tmp`, infoPath(run));
  let exited: ProcessExit | null = null;
  void child.exit.then((e) => (exited = e));
  const deadline = Date.now() + run.config.ray.startup_timeout_s * 1000;
  let last = '';
  const clientEnv = childEnv(spec);
  // Heartbeat from a timer: `ray status` itself can take seconds on a loaded machine.
  const hbTimer = setInterval(() => heartbeat({ stage: 'startRay', address }), 1000);
  try {
    while (Date.now() < deadline) {
      if (cancellationSignal()?.aborted) {
        await stopRunRay(run.paths.runDir);
        confirmCancel();
      }
      if (exited) break;
      last = (await rayStatus(rayBin, address, clientEnv)).text;
      const s = parseRayStatus(last);
      if (s.cpus >= want.cpus && s.gpus >= want.gpus) {
        log('info', 'ray head ready (token authentication, loopback only)', { address, cpus: s.cpus, gpus: s.gpus });
        return info;
      }
      await sleep(1500);
    }
  } finally {
    clearInterval(hbTimer);
  }
  await stopRunRay(run.paths.runDir);
  const tail = await tailFile(join(run.paths.logDir, 'ray.log'), 2000);
  // Non-retryable here: the workflow's recovery policy restarts Ray within its RayFailure budget (Temporal's own
  // retries on top multiplied that budget: 12 head starts where 4 were meant).
  throw ApplicationFailure.create({
    type: 'RayFailure',
    nonRetryable: true,
    message: `${exitedHow(exited) ?? `Ray head did not report ${want.cpus} CPU / ${want.gpus} GPU within ${run.config.ray.startup_timeout_s}s`}.\nray status: ${last.slice(-600)}\nray.log: ${tail.slice(-800)}`,
  });
}

/**
 * The user's own cluster (`ray.address`): the pipeline neither starts nor stops it. Reachable with
 * the user's token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH in the worker's environment, passed to
 * the trainer only), and a warning when it also answers a client that has no token at all.
 */
async function checkUserCluster(run: ResolvedRun, env: EnvInfo): Promise<RayInfo> {
  const address = run.config.ray.address!;
  const rayBin = join(env.envDir, 'bin', 'ray');
  const info: RayInfo = { address, pid: 0, tempDir: '', numCpus: run.config.ray.num_cpus, numGpus: run.config.ray.num_gpus, external: true };
  const withUserToken = childEnv({ label: '', argv: [], cwd: '', env: clusterClientEnv(info), passEnv: [USER_RAY_TOKEN_ENV] });
  const hb = setInterval(() => heartbeat({ stage: 'startRay', address }), 1000);
  try {
    const reached = await rayStatus(rayBin, address, withUserToken);
    if (!reached.ok)
      throw ApplicationFailure.create({
        type: 'RayFailure',
        nonRetryable: true, // the recovery policy checks the user's cluster again, within its budget
        message: `ray.address=${address}: the Ray cluster does not answer \`ray status\`${process.env[USER_RAY_TOKEN_ENV] || process.env[RAY_HEAD.token_path_env] ? ' with the token from the worker\'s environment' : ' (no RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH in the worker\'s environment)'}.\n${reached.text.slice(-800)}`,
      });
    const anonymous = childEnv({ label: '', argv: [], cwd: '', env: { RAY_AUTH_MODE: 'disabled' }, passEnv: [] });
    delete anonymous[RAY_HEAD.token_path_env];
    const open = (await rayStatus(rayBin, address, anonymous)).ok;
    if (open)
      log('warn', `the Ray cluster at ${address} accepts clients without a token: anyone who can reach it can run code as its user (docs/security.md)`, { address });
    return { ...info, authenticated: !open };
  } finally {
    clearInterval(hb);
  }
}

/**
 * The Ray failure policy: stop this run's Ray head and every process it started (its session),
 * optionally run the seed's host-wide cleanup, then start a fresh head with a fresh token. A
 * user's cluster is only checked again.
 */
export async function restartRay(input: { run: ResolvedRun; env: EnvInfo; forceCleanup: boolean }): Promise<RayInfo> {
  if (input.run.config.ray.address) return checkUserCluster(input.run, input.env);
  await stopRunRay(input.run.paths.runDir);
  if (input.forceCleanup) await forceCleanupHost(input.env);
  return startRay({ run: input.run, env: input.env });
}

/** The seed's manual cleanup (`pkill -f VllmAsyncGenerationWorker`, `ray stop --force`): host-wide, opt-in only. */
async function forceCleanupHost(env: EnvInfo): Promise<void> {
  for (const argv of [['pkill', '-f', 'VllmAsyncGenerationWorker'], [join(env.envDir, 'bin', 'ray'), 'stop', '--force']]) {
    const r = await runCommand(argv, { timeoutMs: 60_000 });
    log('warn', 'force cleanup (recovery.force_cleanup=true)', { command: argv.join(' '), exitCode: r.code });
  }
}
