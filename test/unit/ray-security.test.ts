/**
 * The run's Ray head admits nobody without its token (issue 16), against real Ray from the trainer
 * environment: the pipeline's startRay / restartRay / stopRay, a second process without the token
 * dialling the machine's external address and loopback, every socket the cluster's processes listen
 * on probed without credentials, and a control head started the way Ray starts by default, which
 * the same probes must catch.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ROOT, STATE, uniq } from '../helpers.js';
import { resolveRun } from '../../src/activities/index.js';
import { restartRay, startRay } from '../../src/activities/ray.js';
import { stopRunRay } from '../../src/ray/stop.js';
import { childEnv, groupAlive, killGroup } from '../../src/process/proc.js';
import { backendCtx } from '../../src/activities/support.js';
import { getBackend } from '../../src/backends/index.js';
import { headEnv, rayTokenPath } from '../../src/ray/head.js';
import type { EnvInfo, RayInfo, ResolvedRun } from '../../src/common/types.js';
import { clusterPids, dialAddress, externalAddress, listeningSockets, type Listener } from '../support/sockets.js';

const PYTHON = join(STATE, 'envs', 'builtin', 'bin', 'python');
const PROBE = join(ROOT, 'test', 'probes', 'ray_probe.py');
const env: EnvInfo = { envDir: join(STATE, 'envs', 'builtin'), python: PYTHON, fingerprint: 'test', rebuilt: false, nrlForceRebuildVenvs: false };
// A client with no token anywhere: no token variables, and a HOME without ~/.ray/auth_token.
const bareHome = mkdtempSync(join(tmpdir(), 'grpo-no-token-'));
const stranger: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAY_')));
Object.assign(stranger, { HOME: bareHome, RAY_gcs_rpc_server_connect_timeout_s: '5', RAY_gcs_rpc_server_reconnect_timeout_s: '5' });

const runs: ResolvedRun[] = [];
after(async () => {
  for (const run of runs) {
    await stopRunRay(run.paths.runDir).catch(() => undefined);
    rmSync(run.paths.runDir, { recursive: true, force: true });
  }
  rmSync(bareHome, { recursive: true, force: true });
});

function probe(kind: 'task' | 'listener', target: string, extraEnv: NodeJS.ProcessEnv): { ran?: boolean; refused?: boolean; error?: string; status?: unknown; protocol?: string } {
  const r = spawnSync(PYTHON, [PROBE, kind, target], { env: extraEnv, encoding: 'utf8', timeout: 150_000 });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  // Ray's client ends the whole process when it cannot reach the GCS: that is a refusal too.
  if (!line && kind === 'task' && r.status !== 0) return { ran: false, error: `client exited ${r.status ?? r.signal}: ${r.stderr.slice(-400)}` };
  assert.ok(line, `probe ${kind} ${target} printed no result: ${r.stdout.slice(-500)} ${r.stderr.slice(-1500)}`);
  const answer = JSON.parse(line!) as { ran?: boolean; error?: string };
  // Ray's client logs why the GCS turned it away on stderr; the exception only says it failed.
  if (answer.ran === false) answer.error = `${answer.error}\n${r.stderr.slice(-600)}`;
  return answer;
}

/** The process's name for the log line; a short-lived Ray process may have exited since it was listed. */
function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '(exited)';
  }
}

/** Listeners that do work for a client without credentials (non-loopback ones are what the issue forbids). */
function openListeners(listeners: Listener[], seen: (line: string) => void = () => undefined): Array<Listener & { answer: unknown }> {
  const open: Array<Listener & { answer: unknown }> = [];
  for (const l of listeners) {
    const answer = probe('listener', `${dialAddress(l)}:${l.port}`, stranger);
    seen(`${l.address}:${l.port} (pid ${l.pid} ${processName(l.pid)}): ${JSON.stringify(answer)}`);
    if (!answer.refused) open.push({ ...l, answer });
  }
  return open;
}

async function resolved(set: string[] = []): Promise<ResolvedRun> {
  const runId = uniq('ray-sec');
  const run = await resolveRun({ configPath: join(ROOT, 'configs', 'builtin-cpu.yaml'), runId, workflowId: runId, set: ['ray.num_cpus=1', ...set] });
  runs.push(run);
  return run;
}

test("the run's Ray head: token auth, loopback only, a new token on restart, removed at cleanup", { timeout: 10 * 60_000 }, async (t) => {
  const external = externalAddress();
  assert.ok(external, 'this machine has a non-loopback address to dial');
  const run = await resolved();
  const ray: RayInfo = await startRay({ run, env });
  const tokenPath = rayTokenPath(run.paths.runDir);
  assert.equal(ray.authTokenPath, tokenPath);
  const token = readFileSync(tokenPath, 'utf8');
  assert.match(token, /^[0-9a-f]{64}$/, 'a 256-bit random token');
  assert.equal(statSync(tokenPath).mode & 0o777, 0o600, 'token file owner-only');
  assert.equal(statSync(join(tokenPath, '..')).mode & 0o777, 0o700, 'token dir owner-only');
  assert.ok(!JSON.stringify(ray).includes(token), 'the activity result (workflow history) holds the path, not the token');

  // With the token (as the trainer gets it): a task runs, which also starts a Ray worker process.
  const withToken = probe('task', ray.address, { ...stranger, ...headEnv(tokenPath) });
  assert.equal(withToken.ran, true, `with the token a task runs: ${withToken.error}`);

  // Without it: refused through the external address and through loopback.
  const port = ray.address.split(':').at(-1)!;
  const viaExternal = probe('task', `${external}:${port}`, stranger);
  assert.equal(viaExternal.ran, false, 'no task through the external address');
  // A local user who knows the loopback setting reaches the GCS, and Ray's token check turns them away.
  const viaLoopback = probe('task', ray.address, { ...stranger, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: '0' });
  assert.equal(viaLoopback.ran, false, 'no task through loopback without the token');
  assert.match(viaLoopback.error ?? '', /InvalidAuthToken|Authentication token is missing/);

  // Every socket the cluster's processes listen on: loopback only, and none does work without the token.
  const listeners = listeningSockets(clusterPids(ray));
  assert.ok(listeners.length >= 3, `found the cluster's listeners (GCS, raylet, ...): ${JSON.stringify(listeners)}`);
  assert.deepEqual(listeners.filter((l) => !l.loopback), [], 'no Ray listener on a non-loopback address');
  assert.deepEqual(openListeners(listeners, (l) => t.diagnostic(l)), [], 'no listener answers a client without the token');

  // Neither Ray's logs nor ours hold the token.
  for (const dir of [run.paths.logDir, ray.tempDir]) {
    const grep = spawnSync('grep', ['-rl', token, dir], { encoding: 'utf8' });
    assert.equal(grep.stdout.trim(), '', `token found in ${grep.stdout}`);
  }

  // A Ray failure's restart: a new head with a new token; the old token no longer opens anything.
  const restarted = await restartRay({ run, env, forceCleanup: false });
  assert.ok(!groupAlive(ray.pid), 'the old head was stopped');
  const token2 = readFileSync(tokenPath, 'utf8');
  assert.notEqual(token2, token, 'a restarted head gets a new token');
  assert.equal(probe('task', restarted.address, { ...stranger, ...headEnv(tokenPath) }).ran, true, 'the new token works');

  // Cleanup removes the token with the head.
  const { stopped } = await stopRunRay(run.paths.runDir);
  assert.ok(stopped);
  assert.ok(!existsSync(tokenPath), 'token removed at cleanup');
  assert.ok(!groupAlive(restarted.pid));
});

/** A Ray head started by hand, as a user (or Ray's defaults) would: open, or with a token of its own. */
async function userHead(opts: { tokenPath?: string }): Promise<{ pid: number; port: string; temp: string; stop: () => Promise<void> }> {
  const temp = mkdtempSync('/tmp/ray-user-');
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const auth = opts.tokenPath ? { RAY_AUTH_MODE: 'token', RAY_AUTH_TOKEN_PATH: opts.tokenPath } : { RAY_AUTH_MODE: 'disabled' };
  const head = spawn(join(env.envDir, 'bin', 'ray'), ['start', '--head', '--block', '--node-ip-address=127.0.0.1', `--port=${port}`, `--temp-dir=${temp}`, '--num-cpus=1', '--include-dashboard=false', '--disable-usage-stats'], {
    env: { ...stranger, ...auth, RAY_USAGE_STATS_ENABLED: '0' },
    detached: true,
    stdio: 'ignore',
  });
  const stop = async () => {
    await killGroup(head.pid!, 5000);
    spawnSync('pkill', ['-9', '-f', temp]);
    rmSync(temp, { recursive: true, force: true });
  };
  // Up once `ray status` answers (with the token when it has one).
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const st = spawnSync(join(env.envDir, 'bin', 'ray'), ['status', '--address', `127.0.0.1:${port}`], { env: { ...stranger, ...auth }, encoding: 'utf8', timeout: 30_000 });
    if (st.status === 0) return { pid: head.pid!, port, temp, stop };
    await new Promise((r) => setTimeout(r, 1000));
  }
  await stop();
  throw new Error('user head did not come up');
}

test('control: a head started as Ray starts by default is caught by the same probes', { timeout: 5 * 60_000 }, async (t) => {
  // Without token auth and without the loopback setting, `ray start --node-ip-address=127.0.0.1`
  // listens on every interface and runs anyone's task: the probes above must see that.
  const head = await userHead({});
  try {
    const ext = externalAddress()!;
    const r = probe('task', `${ext}:${head.port}`, stranger);
    assert.equal(r.ran, true, `the unprotected head runs a stranger's task through ${ext}: ${r.error}`);
    const listeners = listeningSockets(clusterPids({ pid: head.pid, tempDir: head.temp }));
    assert.ok(listeners.some((l) => !l.loopback), 'it listens on a non-loopback address');
    assert.ok(openListeners(listeners.filter((l) => !l.loopback), (l) => t.diagnostic(l)).length > 0, 'and the listener probe finds one that works without a token');

    // The same cluster given as ray.address: used, with a warning that it runs without authentication.
    const run = await resolved([`ray.address=127.0.0.1:${head.port}`]);
    const ray = await startRay({ run, env });
    assert.equal(ray.external, true);
    assert.equal(ray.authenticated, false, 'an open cluster is reported as unauthenticated');
  } finally {
    await head.stop();
  }
});

test("ray.address: the user's token from the worker's environment reaches the cluster and the trainer, never the config", { timeout: 5 * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-user-token-'));
  const tokenPath = join(dir, 'token');
  writeFileSync(tokenPath, 'u'.repeat(40) + randomBytes(16).toString('hex'), { mode: 0o600 });
  const head = await userHead({ tokenPath });
  const saved = { path: process.env.RAY_AUTH_TOKEN_PATH, token: process.env.RAY_AUTH_TOKEN };
  try {
    const run = await resolved([`ray.address=127.0.0.1:${head.port}`]);
    // Without the user's token the pipeline cannot use the cluster, and says why.
    delete process.env.RAY_AUTH_TOKEN_PATH;
    delete process.env.RAY_AUTH_TOKEN;
    await assert.rejects(startRay({ run, env }), (e: Error) => /ray\.address=127\.0\.0\.1:\d+.*no RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH/s.test(e.message));
    // With it (here as a value, RAY_AUTH_TOKEN), the cluster is checked and reported as authenticated.
    process.env.RAY_AUTH_TOKEN = readFileSync(tokenPath, 'utf8');
    const ray = await startRay({ run, env });
    assert.deepEqual([ray.external, ray.authenticated, ray.pid], [true, true, 0]);
    assert.ok(!JSON.stringify(ray).includes(process.env.RAY_AUTH_TOKEN), 'the result holds no token');
    // The trainer gets token auth on and the value as a pass-through secret only.
    const launch = getBackend('builtin').launch(backendCtx(run, { env, ray }), 2);
    assert.equal(launch.env.RAY_ADDRESS, ray.address);
    assert.equal(launch.env.RAY_AUTH_MODE, 'token');
    assert.ok(launch.passEnv.includes('RAY_AUTH_TOKEN'));
    assert.equal(childEnv(launch).RAY_AUTH_TOKEN, process.env.RAY_AUTH_TOKEN);
    assert.ok(!JSON.stringify(launch).includes(process.env.RAY_AUTH_TOKEN), 'the launch spec (what plan and history show) holds no token');
    // Other children of the worker never see it.
    assert.equal(childEnv({ label: 'x', argv: [], cwd: '', env: {}, passEnv: [] }).RAY_AUTH_TOKEN, undefined);
    // Restart after a Ray failure leaves the user's cluster alone.
    await restartRay({ run, env, forceCleanup: false });
    assert.ok(groupAlive(head.pid), "the user's cluster is never stopped");
    // A config that tries to carry the token is refused.
    await assert.rejects(resolved([`ray.auth_token=${process.env.RAY_AUTH_TOKEN}`]), /ray\.auth_token/);
  } finally {
    if (saved.path === undefined) delete process.env.RAY_AUTH_TOKEN_PATH;
    else process.env.RAY_AUTH_TOKEN_PATH = saved.path;
    if (saved.token === undefined) delete process.env.RAY_AUTH_TOKEN;
    else process.env.RAY_AUTH_TOKEN = saved.token;
    await head.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
