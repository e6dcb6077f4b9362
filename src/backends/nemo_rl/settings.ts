/**
 * Where a NeMo RL run reads and writes, decided once: the checkout and its layout, the recipe,
 * the run's own checkpoint and log dirs (two runs never share them: NeMo RL resumes from whatever
 * `step_N` it finds in its checkpoint dir), an absolute HF_HOME, and the launcher.
 */
import { isAbsolute, join, resolve } from 'node:path';
import type { PipelineConfig } from '../../config/schema.js';
import type { BackendContext } from '../types.js';
import { readRecipe, resolveLayout, type ResolvedLayout } from './recipe.js';

export type NemoRlSettings = NonNullable<PipelineConfig['nemo_rl']>;

export function nrl(ctx: { config: PipelineConfig }): NemoRlSettings {
  const n = ctx.config.nemo_rl;
  if (!n) throw new Error('nemo_rl section missing');
  return n;
}

export function repoDir(ctx: BackendContext): string {
  return resolve(ctx.repoRoot, nrl(ctx).repo_dir);
}

export function layoutOf(ctx: BackendContext): ResolvedLayout {
  const n = nrl(ctx);
  return resolveLayout(repoDir(ctx), { script: n.script, config_path: n.config_path });
}

/** The checkout's recipe (defaults merged), or null when there is no checkout to read (planning elsewhere). */
export function recipeOf(ctx: BackendContext): Record<string, unknown> | null {
  const l = layoutOf(ctx);
  if (l.problem) return null;
  const path = isAbsolute(l.configPath) ? l.configPath : join(repoDir(ctx), l.configPath);
  try {
    return readRecipe(path);
  } catch {
    return null;
  }
}

/** HF_HOME as an absolute path (NeMo RL hands it to every Ray worker; a relative one depends on their cwd). */
export function hfHome(ctx: BackendContext): string {
  return resolve(repoDir(ctx), nrl(ctx).hf_home);
}

/** NeMo RL's logger.log_dir for this run; it creates exp_NNN under it on every (re)start. */
export const nemoLogDir = (ctx: BackendContext) => join(ctx.paths.logDir, 'nemo_rl');

/** Slurm when asked, or when the run spans several nodes. */
export function usesSlurm(config: PipelineConfig): boolean {
  const n = config.nemo_rl;
  if (!n) return false;
  return n.launcher === 'slurm' || (n.launcher === 'auto' && config.trainer.cluster.num_nodes > 1);
}

export function expName(ctx: BackendContext): string {
  const n = nrl(ctx);
  return n.exp_name.replace('<run-id>', ctx.paths.runDir.split('/').filter(Boolean).at(-1) ?? 'run');
}
