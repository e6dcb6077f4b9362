/**
 * The BFCL environment: a venv of its own under <state>/envs/bfcl from trainer/requirements-bfcl.lock
 * (bfcl-eval pins numpy 1.26, which the trainer's environment cannot take). Built on first use by
 * the BFCL stage and by `grpo setup`.
 */
import { join } from 'node:path';
import type { EnvSpec } from '../backends/types.js';
import { REPO_ROOT } from '../common/state.js';
import { ensureBuilt } from './build.js';

export const BFCL_LOCK = 'requirements-bfcl.lock';

export interface BfclEnv {
  dir: string;
  python: string;
  fingerprint: string;
  rebuilt: boolean;
}

export const bfclEnvDir = (stateDir: string) => join(stateDir, 'envs', 'bfcl');

/** The BFCL venv and the commands that build it. */
export function bfclEnvSpec(stateDir: string, python: string): EnvSpec {
  const dir = bfclEnvDir(stateDir);
  const lock = join(REPO_ROOT, 'trainer', BFCL_LOCK);
  return {
    kind: 'venv',
    dir,
    python: join(dir, 'bin', 'python'),
    lockFiles: [lock],
    fingerprintExtra: `bfcl|${python}`,
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

/** Build (or reuse) <state>/envs/bfcl. */
export async function ensureBfclEnvironment(stateDir: string, python: string, opts: { force?: boolean; runId?: string } = {}): Promise<BfclEnv> {
  const spec = bfclEnvSpec(stateDir, python);
  const r = await ensureBuilt({
    name: 'bfcl',
    spec,
    stateDir,
    markerPath: join(spec.dir, '.grpo-env.json'),
    force: !!opts.force,
    owner: opts.runId ?? 'bfcl',
    missingLockMessage: (f) => `lock file ${f} is missing`,
  });
  return { dir: spec.dir, python: spec.python, fingerprint: r.fingerprint, rebuilt: r.rebuilt };
}
