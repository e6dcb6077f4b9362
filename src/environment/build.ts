/**
 * Building an environment from lock files, once: the fingerprint of the lock files (and the
 * interpreter) is kept in a marker; a matching marker means the environment is reused. One builder
 * at a time per environment (a lock in the state dir); the others wait and retry.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { EnvSpec } from '../backends/types.js';
import { confirmCancel, log } from '../common/activity-context.js';
import { CheckpointLock, LockBusyError } from '../process/lock.js';
import { runTracked } from '../process/supervise.js';

export async function envFingerprint(lockFiles: string[], extra: string): Promise<string> {
  const h = createHash('sha256');
  h.update(extra);
  for (const f of lockFiles) {
    h.update('\0' + f.split('/').slice(-2).join('/') + '\0');
    h.update(existsSync(f) ? await readFile(f) : 'missing');
  }
  return h.digest('hex').slice(0, 16);
}

export interface EnvMarker {
  fingerprint: string;
  builtAt: string;
  [k: string]: unknown;
}

export async function readMarker(path: string): Promise<EnvMarker | null> {
  return existsSync(path) ? (JSON.parse(await readFile(path, 'utf8')) as EnvMarker) : null;
}

export interface BuildRequest {
  /** What is built (for logs, the build log's and the lock's names). */
  name: string;
  spec: EnvSpec;
  stateDir: string;
  /** Where the fingerprint is kept (inside a venv, or beside a project that is not ours to write into). */
  markerPath: string;
  /** Extra marker fields written after a build. */
  markerExtra?: Record<string, unknown>;
  force: boolean;
  /** Who builds (a run id), shown to those who wait. */
  owner: string;
  missingLockMessage: (file: string) => string;
}

/** Reuse the environment if its marker matches the lock files, else build it. */
export async function ensureBuilt(req: BuildRequest): Promise<{ fingerprint: string; rebuilt: boolean; marker: EnvMarker }> {
  const { spec } = req;
  for (const f of spec.lockFiles)
    if (!existsSync(f)) throw ApplicationFailure.create({ type: 'BackendUnavailable', nonRetryable: true, message: req.missingLockMessage(f) });
  const fingerprint = await envFingerprint(spec.lockFiles, spec.fingerprintExtra);
  const current = async () => {
    const m = await readMarker(req.markerPath);
    return !req.force && m?.fingerprint === fingerprint && existsSync(spec.python) ? m : null;
  };
  const reused = await current();
  if (reused) {
    log('info', `${req.name} environment up to date`, { dir: spec.dir, fingerprint });
    return { fingerprint, rebuilt: false, marker: reused };
  }
  const lock = await CheckpointLock.acquire(join(req.stateDir, 'envs', `.${req.name}-build`), req.owner, `${req.name} environment build`).catch((e) => {
    if (e instanceof LockBusyError) throw ApplicationFailure.create({ type: 'EnvironmentBusy', message: `${e.message} (another run is building the ${req.name} environment; retrying)`, nextRetryDelay: '20s' });
    throw e;
  });
  try {
    // Built by whoever held the lock before us?
    const meanwhile = await current();
    if (meanwhile) return { fingerprint, rebuilt: false, marker: meanwhile };
    log('info', `building the ${req.name} environment`, { dir: spec.dir, fingerprint, force: req.force });
    if (spec.kind === 'venv') await rm(spec.dir, { recursive: true, force: true });
    const logFile = join(req.stateDir, 'envs', `${req.name}-build.log`);
    for (const step of spec.build) {
      const r = await runTracked(step, logFile, { tickMs: 5000, onTick: () => ({ stage: 'prepareEnvironment', env: req.name, step: step.label }) });
      if (r.cancelled) confirmCancel();
      if (r.code !== 0)
        throw ApplicationFailure.create({ type: 'EnvironmentBuildFailed', message: `${step.label} failed (exit ${r.code}); see ${logFile}\n${r.tail.slice(-1500)}` });
    }
    const marker: EnvMarker = { fingerprint, builtAt: new Date().toISOString(), ...req.markerExtra };
    await mkdir(dirname(req.markerPath), { recursive: true });
    await writeFile(req.markerPath, JSON.stringify(marker, null, 2));
    return { fingerprint, rebuilt: true, marker };
  } finally {
    await lock.release();
  }
}
