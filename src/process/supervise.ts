/**
 * Supervising a child process for an activity: its own process group, output to a log file,
 * heartbeats from a timer (never waiting on slow work), and the whole group killed when the
 * activity is cancelled. The train, Ray, evaluation, BFCL and environment stages all run their
 * commands through here. Outside an activity (the CLI's setup) heartbeats and cancellation are no-ops.
 */
import type { CommandSpec } from '../backends/types.js';
import { cancellationSignal, heartbeat, log, throwIfCancelled } from '../common/activity-context.js';
import { groupAlive, killGroup, spawnToLog, tailFile, type Spawned } from './proc.js';

export interface TrackedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  cancelled: boolean;
  tail: string;
  /** `until` held: the process was left running (a trainer paused for the next segment). */
  detached: boolean;
}

export interface TrackOptions {
  extraEnv?: Record<string, string>;
  tickMs?: number;
  onTick?: () => Promise<unknown> | unknown;
  /** Polled every 100 ms: once true, return and leave the process running. */
  until?: () => boolean;
  /** Heartbeat details until the first tick has run (the first heartbeat goes out at once; later ones are throttled). */
  initialDetails?: unknown;
}

/**
 * Run a command in its own process group, heartbeating every `tickMs` (with `onTick`'s details),
 * and kill the whole group when the activity is cancelled.
 */
export async function runTracked(spec: CommandSpec, logFile: string, opts: TrackOptions = {}): Promise<TrackedResult> {
  throwIfCancelled();
  const child = spawnToLog(spec, logFile, opts.extraEnv, `${spec.label}: ${spec.argv.join(' ')}`);
  return trackProcess(child, spec.label, logFile, opts);
}

/** Follow a running process group (spawned now or by an earlier segment): heartbeats, cancellation, exit. */
export async function trackProcess(child: Spawned, label: string, logFile: string, opts: TrackOptions = {}): Promise<TrackedResult> {
  const signal = cancellationSignal();
  let cancelled = false;
  const onAbort = () => {
    cancelled = true;
    log('warn', `cancelling: stopping ${child.cancel ? label : `process group ${child.pid} (${label})`}`);
    void (child.cancel ? child.cancel() : killGroup(child.pid));
  };
  signal?.addEventListener('abort', onAbort);
  if (signal?.aborted) onAbort();
  // Heartbeats come from their own timer with the latest details, never waiting on slow work
  // (metrics parsing, progress signals), so a loaded machine does not cause heartbeat timeouts.
  let details: unknown = opts.initialDetails ?? { label, pid: child.pid };
  let ticking = false;
  const tick = async () => {
    if (ticking) return;
    ticking = true;
    try {
      if (opts.onTick) details = (await opts.onTick()) ?? details;
    } catch (e) {
      log('debug', 'tick failed', { error: (e as Error).message });
    } finally {
      ticking = false;
    }
  };
  const hbTimer = setInterval(() => heartbeat(details), 1000);
  const timer = setInterval(() => void tick(), opts.tickMs ?? 2000);
  let untilTimer: NodeJS.Timeout | undefined;
  const reached = new Promise<'until'>((resolve) => {
    if (!opts.until) return;
    untilTimer = setInterval(() => {
      if (!cancelled && opts.until!()) resolve('until');
    }, 100);
  });
  try {
    const outcome = await Promise.race([child.exit, reached]);
    if (outcome === 'until') {
      await tick();
      heartbeat(details);
      return { code: null, signal: null, cancelled: false, tail: '', detached: true };
    }
    const { code, signal: sig } = outcome;
    // The group may still hold grandchildren (e.g. Ray workers): end them too.
    if (child.pid > 0 && groupAlive(child.pid)) await killGroup(child.pid, 5000);
    await tick();
    heartbeat(details);
    return { code, signal: sig, cancelled: cancelled || !!signal?.aborted, tail: await tailFile(logFile, 3000), detached: false };
  } finally {
    clearInterval(timer);
    clearInterval(hbTimer);
    clearInterval(untilTimer);
    signal?.removeEventListener('abort', onAbort);
  }
}

