/** Small helpers every stage shares: the backend context of a run, and confirming a cancellation. */
import { CancelledFailure } from '@temporalio/activity';
import { REPO_ROOT } from '../common/state.js';
import type { BackendContext } from '../backends/index.js';
import type { ResolvedRun } from '../common/types.js';
import { cancellationSignal } from './context.js';

export function backendCtx(run: ResolvedRun, extra: Partial<BackendContext> = {}): BackendContext {
  return { config: run.config, repoRoot: REPO_ROOT, stateDir: run.paths.stateDir, paths: run.paths, hubOffline: !!run.hubOffline, trainerOverrides: run.trainerOverrides ?? [], ...extra };
}

/** The activity was cancelled while a child ran: end with Temporal's cancellation failure. */
export function confirmCancel(): never {
  const s = cancellationSignal();
  throw new CancelledFailure(String(s?.reason ?? 'cancelled'));
}
