/**
 * Exclusive lock + pid file on a checkpoint directory: two trainers never write one checkpoint dir.
 * `.grpo.lock` names the owning worker process (pid + start time + host); `trainer.pid` names the
 * trainer's process group while it runs. A lock whose owner is dead is stale and is taken over;
 * an orphaned trainer left behind by a dead owner is stopped first (only if its command line shows
 * it is the trainer of this checkpoint dir, i.e. one the pipeline started).
 */
import { open, readFile, rm, writeFile, mkdir, rename, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { HOST, groupAlive, isAlive, killGroup, procCmdline, procStartTime } from './proc.js';

export const LOCK_FILE = '.grpo.lock';
export const PID_FILE = 'trainer.pid';

export interface LockOwner {
  host: string;
  pid: number;
  pidStart: string | null;
  runId: string;
  holder: string;
  acquiredAt: string;
}

export class LockBusyError extends Error {
  constructor(
    readonly dir: string,
    readonly owner: LockOwner | null,
  ) {
    super(
      `checkpoint dir ${dir} is locked by ${owner ? `${owner.holder} (pid ${owner.pid} on ${owner.host} since ${owner.acquiredAt})` : 'another process'}; ` +
        'two trainers must never write one checkpoint directory',
    );
    this.name = 'LockBusyError';
  }
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/**
 * Is the lock's owner still there? On this host: its pid (and start time, against pid reuse).
 * On another host (shared file system): only its lease tells, i.e. the lock file's mtime, which a
 * live owner refreshes while its trainer runs; a lease older than `staleAfterMs` means a lost host.
 */
export function ownerAlive(o: LockOwner, leaseAgeMs = 0, staleAfterMs = Infinity): boolean {
  if (o.host !== HOST) return leaseAgeMs < staleAfterMs;
  if (!isAlive(o.pid)) return false;
  const start = procStartTime(o.pid);
  return !(o.pidStart && start && o.pidStart !== start); // pid reused by another process → dead
}

export interface TrainerPid {
  pid: number;
  pidStart: string | null;
  host: string;
  checkpointDir: string;
  startedAt: string;
}

/** Stop a trainer left behind by a dead lock owner. Returns true when one was stopped. */
export async function stopOrphanTrainer(dir: string): Promise<boolean> {
  const t = await readJson<TrainerPid>(join(dir, PID_FILE));
  if (!t || t.host !== HOST || !groupAlive(t.pid)) return false;
  const start = procStartTime(t.pid);
  if (t.pidStart && start && t.pidStart !== start) return false; // pid reused: not ours
  if (isAlive(t.pid) && !procCmdline(t.pid).includes(t.checkpointDir)) return false;
  await killGroup(t.pid);
  return true;
}

export class CheckpointLock {
  /** Set when this lock was taken over from a dead owner (worker crash / host loss). */
  tookOver: { from: LockOwner | null; trainerStopped: boolean } | null = null;

  private constructor(
    readonly dir: string,
    readonly owner: LockOwner,
  ) {}

  static async acquire(dir: string, runId: string, holder: string, opts: { staleAfterMs?: number } = {}): Promise<CheckpointLock> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, LOCK_FILE);
    const owner: LockOwner = { host: HOST, pid: process.pid, pidStart: procStartTime(process.pid), runId, holder, acquiredAt: new Date().toISOString() };
    let tookOver: CheckpointLock['tookOver'] = null;
    for (let i = 0; i < 3; i++) {
      try {
        const fh = await open(path, 'wx');
        await fh.writeFile(JSON.stringify(owner, null, 2));
        await fh.close();
        const lock = new CheckpointLock(dir, owner);
        lock.tookOver = tookOver;
        return lock;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const existing = await readJson<LockOwner>(path);
      const leaseAge = await stat(path).then((st) => Date.now() - st.mtimeMs, () => 0);
      if (existing && ownerAlive(existing, leaseAge, opts.staleAfterMs)) throw new LockBusyError(dir, existing);
      // Stale (dead owner or unreadable): stop its orphaned trainer, then take over atomically.
      const stopped = await stopOrphanTrainer(dir);
      tookOver = { from: existing, trainerStopped: stopped || (tookOver as CheckpointLock['tookOver'])?.trainerStopped === true };
      const stale = `${path}.stale-${process.pid}-${Date.now()}`;
      try {
        await rename(path, stale);
        await rm(stale, { force: true });
      } catch {
        /* another process won the takeover race; loop re-checks */
      }
    }
    throw new LockBusyError(dir, await readJson<LockOwner>(path));
  }

  async writeTrainerPid(pid: number): Promise<void> {
    const t: TrainerPid = { pid, pidStart: procStartTime(pid), host: HOST, checkpointDir: this.dir, startedAt: new Date().toISOString() };
    const path = join(this.dir, PID_FILE);
    await writeFile(`${path}.tmp`, JSON.stringify(t, null, 2));
    await rename(`${path}.tmp`, path); // a reader never sees half a pid file
  }

  /** Renew the lease (lock file mtime) so owners on other hosts see this one is alive. */
  async renew(): Promise<void> {
    const now = new Date();
    await utimes(join(this.dir, LOCK_FILE), now, now).catch(() => undefined);
  }

  async clearTrainerPid(): Promise<void> {
    await rm(join(this.dir, PID_FILE), { force: true });
  }

  async release(): Promise<void> {
    const path = join(this.dir, LOCK_FILE);
    const cur = await readJson<LockOwner>(path);
    if (cur && cur.pid === this.owner.pid && cur.host === this.owner.host && cur.acquiredAt === this.owner.acquiredAt) await rm(path, { force: true });
  }
}
