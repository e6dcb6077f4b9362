/**
 * startRay when the trainer environment cannot run Ray: seen on a GPU machine whose environment lacked
 * the `ray` executable, where the stage restarted "the Ray cluster" three times and then said the head
 * "did not report 8 CPU / 1 GPU within 120s". Real broken environments, no doubles: a venv without
 * `ray`, and a venv whose `ray` script cannot import the package. And a machine with fewer GPUs than
 * `ray.num_gpus`, which `ray start` would advertise anyway.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ApplicationFailure } from '@temporalio/common';
import { ROOT, STATE, uniq } from '../helpers.js';
import { resolveRun } from '../../src/activities/index.js';
import { startRay } from '../../src/activities/ray.js';
import { rayTokenPath } from '../../src/ray/head.js';
import { rayInfoPath, stopRunRay } from '../../src/ray/stop.js';
import { DEFAULT_RECOVERY, decide } from '../../src/failures/policy.js';
import type { EnvInfo, ResolvedRun } from '../../src/common/types.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A real venv (no packages) standing where the trainer environment would be. */
function bareVenv(): EnvInfo {
  const envDir = mkdtempSync(join(tmpdir(), 'grpo-broken-env-'));
  dirs.push(envDir);
  const r = spawnSync('python3', ['-m', 'venv', '--without-pip', envDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { envDir, python: join(envDir, 'bin', 'python'), fingerprint: 'test', rebuilt: false, nrlForceRebuildVenvs: false };
}

/** startRay's failure with how long it took to come (it must not start a head). */
async function startRayFailure(run: ResolvedRun, env: EnvInfo): Promise<{ err: ApplicationFailure; ms: number }> {
  const t0 = Date.now();
  const err = await startRay({ run, env }).then(
    async () => {
      await stopRunRay(run.paths.runDir);
      assert.fail('a Ray head came up in a broken environment');
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, String(err));
  return { err, ms: Date.now() - t0 };
}

async function resolved(set: string[] = []): Promise<ResolvedRun> {
  const runId = uniq('ray-broken');
  const run = await resolveRun({ configPath: join(ROOT, 'configs', 'builtin-cpu.yaml'), runId, workflowId: runId, set: ['ray.num_cpus=1', 'ray.startup_timeout_s=60', ...set] });
  dirs.push(run.paths.runDir);
  return run;
}

test('startRay: an environment without a runnable `ray` fails the run at once, naming the environment and the fix', { timeout: 60_000 }, async () => {
  const env = bareVenv();
  const run = await resolved();
  const { err, ms } = await startRayFailure(run, env);
  assert.equal(err.type, 'BackendUnavailable');
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, /could not start the Ray head: spawn \S+\/bin\/ray ENOENT/);
  assert.ok(err.message.includes(`The trainer environment ${env.envDir} has no runnable \`ray\``), err.message);
  assert.match(err.message, /environment\.force_rebuild=true/);
  assert.ok(ms < 10_000, 'no waiting for a head that never started');
  assert.equal(existsSync(rayTokenPath(run.paths.runDir)), false, 'the head token written for it is removed');
  assert.match(readFileSync(join(run.paths.logDir, 'ray.log'), 'utf8'), /failed to start \S+\/bin\/ray: spawn \S+ ENOENT/);
  // and the workflow's policy gives up instead of restarting Ray
  const action = decide({ type: err.type!, stage: 'startRay', used: 0, settings: DEFAULT_RECOVERY, retryAfterSeconds: null, oom: null, modelCached: true, random: 0.5 });
  assert.equal(action.kind, 'fail', JSON.stringify(action));
});

test('startRay: a head that exits before it is ready says so, with its exit code and its log', { timeout: 90_000 }, async () => {
  const env = bareVenv();
  // What pip writes as the console script, in an environment where the package itself is missing.
  const ray = join(env.envDir, 'bin', 'ray');
  writeFileSync(ray, `#!${env.python}\nimport sys\nfrom ray.scripts.scripts import main\nsys.exit(main())\n`);
  chmodSync(ray, 0o755);
  const run = await resolved();
  const { err, ms } = await startRayFailure(run, env);
  assert.equal(err.type, 'RayFailure');
  assert.equal(err.nonRetryable, true, 'the recovery policy restarts Ray within its budget; Temporal does not retry it first');
  assert.match(err.message, /^Ray head exited \(code 1\) before it was ready\./);
  assert.doesNotMatch(err.message, /did not report/);
  assert.match(err.message, /ray\.log: [\s\S]*ModuleNotFoundError: No module named 'ray'/);
  assert.ok(ms < 45_000, `ended when the head exited, not at the 60 s startup timeout (${ms} ms)`);
});

test('startRay: more GPUs asked of Ray than CUDA sees here fails the run at once, before any head starts', { timeout: 120_000 }, async () => {
  // The trainer environment npm test builds; one GPU more than this machine has (none on CI).
  const env: EnvInfo = { envDir: join(STATE, 'envs', 'builtin'), python: join(STATE, 'envs', 'builtin', 'bin', 'python'), fingerprint: 'test', rebuilt: false, nrlForceRebuildVenvs: false };
  const probe = spawnSync(env.python, ['-c', 'import torch; print(torch.cuda.device_count())'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, probe.stderr);
  const seen = Number(probe.stdout.trim());
  const run = await resolved([`ray.num_gpus=${seen + 1}`]);
  const { err } = await startRayFailure(run, env);
  assert.equal(err.type, 'InvalidConfig');
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, new RegExp(`^ray\\.num_gpus=${seen + 1}, but CUDA sees ${seen} GPU\\(s\\) on this machine`));
  assert.match(err.message, new RegExp(`--set ray\\.num_gpus=${seen}`));
  assert.equal(existsSync(rayInfoPath(run.paths.runDir)), false, 'no Ray head was started');
  const action = decide({ type: err.type!, stage: 'startRay', used: 0, settings: DEFAULT_RECOVERY, retryAfterSeconds: null, oom: null, modelCached: true, random: 0.5 });
  assert.equal(action.kind, 'fail', JSON.stringify(action));
});
