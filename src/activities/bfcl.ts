/**
 * BFCL v3 evaluation of one model (the base model before training, the best checkpoint after):
 * `python -m grpo_trainer bfcl` in the BFCL environment (trainer/requirements-bfcl.lock, a venv of
 * its own under <state>/envs/bfcl because bfcl-eval pins numpy 1.26), which exports the model,
 * serves it with the trainer environment's python (`grpo_trainer serve`, OpenAI-compatible) and
 * runs bfcl-eval's generation and checkers. Writes <runDir>/bfcl/<which>/bfcl.json.
 *
 * Activity `bfclEvaluate` (heavy: train task queue). It builds the BFCL environment on first use
 * (fingerprinted by its lock file, exclusive per state dir), heartbeats while it runs, and stops
 * the whole process group (server included) when cancelled.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { CommandSpec } from '../backends/types.js';
import type { PipelineConfig } from '../config/schema.js';
import { REPO_ROOT } from '../common/state.js';
import type { EnvInfo, ResolvedRun } from '../common/types.js';
import { cancellationSignal, heartbeat, log } from './context.js';
import { CheckpointLock, LockBusyError } from './lock.js';
import { killGroup, spawnToLog, tailFile } from './proc.js';

export const BFCL_LOCK = 'requirements-bfcl.lock';

export interface BfclCategoryResult {
  accuracy: number;
  correct: number;
  total: number;
}

export interface BfclResult {
  which: 'baseline' | 'final';
  model: string;
  outPath: string;
  package: string;
  version: string;
  dataVersion: string;
  overall: BfclCategoryResult;
  categories: Record<string, BfclCategoryResult>;
  seconds: number;
}

export interface BfclEnv {
  dir: string;
  python: string;
  fingerprint: string;
  rebuilt: boolean;
}

export const bfclEnvDir = (stateDir: string) => join(stateDir, 'envs', 'bfcl');

async function fingerprintOf(lock: string, python: string): Promise<string> {
  const h = createHash('sha256');
  h.update(`bfcl|${python}\0`);
  h.update(existsSync(lock) ? await readFile(lock) : 'missing');
  return h.digest('hex').slice(0, 16);
}

/** The commands that build the BFCL environment (also shown by tests / docs). */
export function bfclEnvBuild(stateDir: string, python: string): { dir: string; python: string; lock: string; build: CommandSpec[] } {
  const dir = bfclEnvDir(stateDir);
  const lock = join(REPO_ROOT, 'trainer', BFCL_LOCK);
  return {
    dir,
    python: join(dir, 'bin', 'python'),
    lock,
    build: [
      { label: 'create the BFCL venv', argv: [python, '-m', 'venv', dir], cwd: REPO_ROOT, env: {}, passEnv: [] },
      {
        label: 'install the BFCL lock (full closure, so --no-deps)',
        argv: [join(dir, 'bin', 'pip'), 'install', '--disable-pip-version-check', '--no-deps', '-r', lock],
        cwd: REPO_ROOT,
        env: {},
        passEnv: [],
      },
    ],
  };
}

/** Run a command in its own process group, heartbeating; the group is killed on cancellation. */
async function runHeartbeating(spec: CommandSpec, logFile: string, details: () => unknown): Promise<{ code: number | null; cancelled: boolean; tail: string }> {
  const child = spawnToLog(spec, logFile, {}, `${spec.label}: ${spec.argv.join(' ')}`);
  const signal = cancellationSignal();
  let cancelled = false;
  const onAbort = () => {
    cancelled = true;
    void killGroup(child.pid);
  };
  signal?.addEventListener('abort', onAbort);
  const timer = setInterval(() => heartbeat(details()), 1000);
  try {
    const { code } = await child.exit;
    if (child.pid > 0) await killGroup(child.pid, 5000); // the model server, if it outlived its parent
    return { code, cancelled: cancelled || !!signal?.aborted, tail: await tailFile(logFile, 3000) };
  } finally {
    clearInterval(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Build (or reuse) <state>/envs/bfcl from trainer/requirements-bfcl.lock. */
export async function ensureBfclEnvironment(stateDir: string, python: string, opts: { force?: boolean; runId?: string } = {}): Promise<BfclEnv> {
  const spec = bfclEnvBuild(stateDir, python);
  if (!existsSync(spec.lock)) throw ApplicationFailure.create({ type: 'BackendUnavailable', nonRetryable: true, message: `lock file ${spec.lock} is missing` });
  const fingerprint = await fingerprintOf(spec.lock, python);
  const marker = join(spec.dir, '.grpo-env.json');
  const current = async () => (existsSync(marker) ? (JSON.parse(await readFile(marker, 'utf8')) as { fingerprint?: string }).fingerprint : undefined);
  if (!opts.force && (await current()) === fingerprint && existsSync(spec.python)) return { dir: spec.dir, python: spec.python, fingerprint, rebuilt: false };
  const lock = await CheckpointLock.acquire(join(stateDir, 'envs', '.bfcl-build'), opts.runId ?? 'bfcl', 'bfcl environment build').catch((e) => {
    if (e instanceof LockBusyError) throw ApplicationFailure.create({ type: 'EnvironmentBusy', message: `${e.message} (the BFCL environment is being built; retrying)`, nextRetryDelay: '20s' });
    throw e;
  });
  try {
    if (!opts.force && (await current()) === fingerprint && existsSync(spec.python)) return { dir: spec.dir, python: spec.python, fingerprint, rebuilt: false };
    log('info', 'building the BFCL environment', { dir: spec.dir, fingerprint });
    await rm(spec.dir, { recursive: true, force: true });
    const logFile = join(stateDir, 'envs', 'bfcl-build.log');
    for (const step of spec.build) {
      const r = await runHeartbeating(step, logFile, () => ({ stage: 'bfcl', step: step.label }));
      if (r.cancelled) throw ApplicationFailure.create({ type: 'Cancelled', message: 'cancelled while building the BFCL environment', nonRetryable: true });
      if (r.code !== 0) throw ApplicationFailure.create({ type: 'EnvironmentBuildFailed', message: `${step.label} failed (exit ${r.code}); see ${logFile}\n${r.tail.slice(-1500)}` });
    }
    await writeFile(marker, JSON.stringify({ fingerprint, builtAt: new Date().toISOString() }, null, 2));
    return { dir: spec.dir, python: spec.python, fingerprint, rebuilt: true };
  } finally {
    await lock.release();
  }
}

/** Whether the first turn is prefilled: bfcl.prefill_tool_call, else the trainer's env setting. */
export function bfclPrefill(config: PipelineConfig): boolean {
  if (config.bfcl.prefill_tool_call !== null) return config.bfcl.prefill_tool_call;
  const env = (config.trainer.env ?? {}) as { workplace_assistant?: { prefill_tool_call?: unknown } };
  return env.workplace_assistant?.prefill_tool_call === true;
}

/** The `python -m grpo_trainer bfcl` command for one model. */
export function bfclCommand(config: PipelineConfig, opts: { bfclPython: string; trainerPython: string; modelPath: string; outDir: string; which: string }): CommandSpec {
  const b = config.bfcl;
  const argv = [
    opts.bfclPython, '-m', 'grpo_trainer', 'bfcl',
    '--model', opts.modelPath,
    '--out', opts.outDir,
    '--trainer-python', opts.trainerPython,
    '--categories', b.categories.join(','),
    '--limit', String(b.limit),
    '--temperature', String(b.temperature),
    '--max-tokens', String(b.max_tokens),
    bfclPrefill(config) ? '--prefill-tool-call' : '--no-prefill-tool-call',
    '--threads', String(config.ray.num_cpus),
    '--label', opts.which,
  ];
  const overrides = Object.entries(b.limit_for).filter(([c]) => b.categories.includes(c));
  if (overrides.length) argv.push('--limit-for', overrides.map(([c, n]) => `${c}=${n}`).join(','));
  return {
    label: `BFCL ${opts.which}`,
    argv,
    cwd: REPO_ROOT,
    env: { PYTHONPATH: process.env.GRPO_TRAINER_DIR || join(REPO_ROOT, 'trainer'), PYTHONUNBUFFERED: '1', HF_HUB_OFFLINE: '1', MPLBACKEND: 'Agg' },
    passEnv: [],
  };
}

export interface BfclEvaluateInput {
  run: ResolvedRun;
  env: EnvInfo;
  which: 'baseline' | 'final';
  /** The base model dir (baseline) or the best checkpoint's step dir (final). */
  modelPath: string;
}

/** BFCL v3 scores of one model; null when the run has BFCL disabled or the backend cannot serve its checkpoints. */
export async function bfclEvaluate(input: BfclEvaluateInput): Promise<BfclResult | null> {
  const { run, env } = input;
  if (!run.config.bfcl.enabled) return null;
  if (run.config.backend !== 'builtin') {
    log('warn', 'BFCL runs only with the builtin backend (it exports and serves HF checkpoints); skipped', { backend: run.config.backend });
    return null;
  }
  const started = Date.now();
  const bfclEnv = await ensureBfclEnvironment(run.paths.stateDir, run.config.environment.python, { runId: run.runId });
  const outDir = join(run.paths.runDir, 'bfcl', input.which);
  await mkdir(outDir, { recursive: true });
  const outPath = join(outDir, 'bfcl.json');
  await rm(outPath, { force: true });
  const spec = bfclCommand(run.config, { bfclPython: bfclEnv.python, trainerPython: env.python, modelPath: input.modelPath, outDir, which: input.which });
  const logFile = join(run.paths.logDir, `bfcl-${input.which}.log`);
  const r = await runHeartbeating(spec, logFile, () => ({ stage: 'bfcl', which: input.which, model: input.modelPath }));
  if (r.cancelled) throw ApplicationFailure.create({ type: 'Cancelled', message: `BFCL ${input.which} cancelled`, nonRetryable: true });
  if (r.code !== 0 || !existsSync(outPath))
    throw ApplicationFailure.create({ type: 'BfclFailed', message: `BFCL ${input.which} exited with code ${r.code}; see ${logFile}\n${r.tail.slice(-1500)}` });
  const o = JSON.parse(await readFile(outPath, 'utf8')) as {
    package: string;
    version: string;
    data_version: string;
    overall: BfclCategoryResult;
    categories: Record<string, BfclCategoryResult>;
  };
  return {
    which: input.which,
    model: input.modelPath,
    outPath,
    package: o.package,
    version: o.version,
    dataVersion: o.data_version,
    overall: o.overall,
    categories: Object.fromEntries(Object.entries(o.categories).map(([c, v]) => [c, { accuracy: v.accuracy, correct: v.correct, total: v.total }])),
    seconds: Math.round((Date.now() - started) / 1000),
  };
}
