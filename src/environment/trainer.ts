/**
 * The trainer's environment (a venv from lock files, or NeMo RL's uv project), built only when
 * its lock files change. The prepareEnvironment stage and `grpo setup` both use it.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getBackend, type BackendContext, type EnvSpec } from '../backends/index.js';
import type { EnvInfo } from '../common/types.js';
import { ensureBuilt, readMarker } from './build.js';

function markerPath(ctx: BackendContext, spec: EnvSpec): string {
  return spec.kind === 'venv' ? join(spec.dir, '.grpo-env.json') : join(ctx.stateDir, 'envs', `${ctx.config.backend}.json`);
}

/** Build (or reuse) the trainer environment. `owner` names who builds (a run id). */
export async function ensureTrainerEnvironment(ctx: BackendContext, opts: { force: boolean; owner: string }): Promise<EnvInfo> {
  const backend = getBackend(ctx.config.backend);
  const spec = backend.environment(ctx);
  const r = await ensureBuilt({
    name: backend.name,
    spec,
    stateDir: ctx.stateDir,
    markerPath: markerPath(ctx, spec),
    // NeMo RL: the first launch after a rebuild must set NRL_FORCE_REBUILD_VENVS=true.
    markerExtra: { nrlForceRebuildPending: true },
    force: opts.force || ctx.config.environment.force_rebuild,
    owner: opts.owner,
    missingLockMessage: (f) => backend.missingEnvironmentMessage(f),
  });
  return { envDir: spec.dir, python: spec.python, fingerprint: r.fingerprint, rebuilt: r.rebuilt, nrlForceRebuildVenvs: r.marker.nrlForceRebuildPending === true };
}

/** The first launch after a rebuild happened: later launches do not force NeMo RL's venv rebuild. */
export async function consumeForceRebuild(ctx: BackendContext, env: EnvInfo): Promise<void> {
  const path = markerPath(ctx, getBackend(ctx.config.backend).environment(ctx));
  if (!env.nrlForceRebuildVenvs || !existsSync(path)) return;
  const m = await readMarker(path);
  if (m?.nrlForceRebuildPending) await writeFile(path, JSON.stringify({ ...m, nrlForceRebuildPending: false }, null, 2));
}
