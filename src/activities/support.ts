/** The backend context of a run, as every stage hands it to the backend adapter. */
import { REPO_ROOT } from '../common/state.js';
import type { BackendContext } from '../backends/index.js';
import type { ResolvedRun } from '../common/types.js';

export function backendCtx(run: ResolvedRun, extra: Partial<BackendContext> = {}): BackendContext {
  return { config: run.config, repoRoot: REPO_ROOT, stateDir: run.paths.stateDir, paths: run.paths, hubOffline: !!run.hubOffline, trainerOverrides: run.trainerOverrides ?? [], ...extra };
}
