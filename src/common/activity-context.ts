/** Activity-context helpers that also work outside an activity (CLI setup/quickstart reuse them). */
import { Context, CancelledFailure } from '@temporalio/activity';
import type { ProgressUpdate } from '../common/types.js';

export function currentContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

export function heartbeat(details?: unknown): void {
  currentContext()?.heartbeat(details);
}

export function attempt(): number {
  return currentContext()?.info.attempt ?? 1;
}

export function cancellationSignal(): AbortSignal | undefined {
  return currentContext()?.cancellationSignal;
}

export function throwIfCancelled(): void {
  const s = cancellationSignal();
  if (s?.aborted) throw new CancelledFailure(String(s.reason ?? 'cancelled'));
}

const lastSent = new Map<string, number>();

/** Signal the activity's workflow with progress (best effort, never fails the activity). */
export async function reportProgress(update: ProgressUpdate, opts: { minIntervalMs?: number; force?: boolean } = {}): Promise<void> {
  const ctx = currentContext();
  if (!ctx) return;
  const wid = ctx.info.workflowExecution?.workflowId;
  if (!wid) return;
  const key = `${wid}/${ctx.info.activityId}`;
  const now = Date.now();
  if (!opts.force && now - (lastSent.get(key) ?? 0) < (opts.minIntervalMs ?? 3000)) return;
  lastSent.set(key, now);
  try {
    await ctx.client.workflow.getHandle(wid).signal('progress', update);
  } catch (e) {
    ctx.log.debug('progress signal failed', { error: (e as Error).message });
  }
}

export function log(level: 'info' | 'warn' | 'error' | 'debug', message: string, meta?: Record<string, unknown>): void {
  const ctx = currentContext();
  if (ctx) ctx.log[level](message, meta);
  else if (level !== 'debug' && process.env.GRPO_QUIET !== '1') process.stderr.write(`[grpo] ${message}${meta ? ' ' + JSON.stringify(meta) : ''}\n`);
}

/** The activity was cancelled while a child ran: end with Temporal's cancellation failure. */
export function confirmCancel(): never {
  const s = cancellationSignal();
  throw new CancelledFailure(String(s?.reason ?? 'cancelled'));
}
