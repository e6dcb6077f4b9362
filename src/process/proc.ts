/**
 * Child processes for activities: spawned detached (own process group), output to a log file,
 * never blocking the event loop, killed as a whole group.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, existsSync, mkdirSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import type { CommandSpec } from '../backends/types.js';
import { SECRET_ENV_NAMES, redact } from '../common/redact.js';

export const HOST = hostname();

/** Environment for a child: the worker's env without secrets, plus the spec's env, plus pass-through secrets. */
export function childEnv(spec: CommandSpec, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const n of SECRET_ENV_NAMES) delete env[n];
  // Do not leak the worker's own virtualenv into children.
  delete env.VIRTUAL_ENV;
  // The malloc setting that scripts/grpo gave the worker itself is not the children's.
  if (env.GRPO_DEFAULT_MALLOC_ARENA_MAX === '1') delete env.MALLOC_ARENA_MAX;
  delete env.GRPO_DEFAULT_MALLOC_ARENA_MAX;
  // A Ray cluster reaches a child only when the pipeline says so (its own head, or `ray.address`).
  delete env.RAY_ADDRESS;
  Object.assign(env, spec.env, extra);
  for (const n of spec.passEnv) if (process.env[n]) env[n] = process.env[n];
  return env;
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function groupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Process start time (clock ticks since boot) from /proc; null when unknown. Detects pid reuse. */
export function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null; // field 22 overall
  } catch {
    return null;
  }
}

export function procCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Processes in session `sid` (children spawned detached are session leaders; e.g. Ray workers move
 * to their own process groups but stay in the session of the `ray start` we spawned).
 */
export function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // rest[0]=state, [1]=ppid, [2]=pgrp, [3]=session
      if (Number(rest[3]) === sid && rest[0] !== 'Z') out.push(Number(e));
    } catch {
      /* exited */
    }
  }
  return out;
}

function signalAll(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* gone */
  }
  for (const pid of sessionMembers(pgid)) {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

const anyLeft = (pgid: number) => groupAlive(pgid) || sessionMembers(pgid).length > 0;

/** SIGTERM the whole group (and its session), wait up to graceMs, then SIGKILL. Resolves when all are gone. */
export async function killGroup(pgid: number, graceMs = 10_000): Promise<void> {
  if (!Number.isInteger(pgid) || pgid <= 1 || !anyLeft(pgid)) return;
  signalAll(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!anyLeft(pgid)) return;
    await sleepMs(200);
  }
  signalAll(pgid, 'SIGKILL');
  for (let i = 0; i < 50 && anyLeft(pgid); i++) await sleepMs(100);
}

/** How a spawned process ended; `error`: why it could not be started at all (then its `pid` is -1 and `code` 127). */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

export interface Spawned {
  /** Its process group (0 when it is not a local process, e.g. a Slurm job). */
  pid: number;
  exit: Promise<ProcessExit>;
  /** How to stop it when it is not a local process group. */
  cancel?: () => Promise<void>;
}

/** Spawn detached into its own process group with stdout+stderr appended to logFile. */
export function spawnToLog(spec: CommandSpec, logFile: string, extraEnv: Record<string, string> = {}, header?: string): Spawned {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  if (header) writeSync(fd, `\n===== ${new Date().toISOString()} ${redact(header)} =====\n`);
  const child = spawn(spec.argv[0]!, spec.argv.slice(1), {
    cwd: spec.cwd,
    env: childEnv(spec, extraEnv),
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exit = new Promise<ProcessExit>((resolve) => {
    child.once('error', (err) => {
      try {
        const f = openSync(logFile, 'a');
        writeSync(f, `\n[grpo] failed to start ${spec.argv[0]}: ${err.message}\n`);
        closeSync(f);
      } catch {
        /* ignore */
      }
      resolve({ code: 127, signal: null, error: err.message });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  if (child.pid === undefined) return { pid: -1, exit };
  return { pid: child.pid, exit };
}

/** Last `bytes` of a file as text (redacted). */
export async function tailFile(path: string, bytes = 4000): Promise<string> {
  if (!existsSync(path)) return '';
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    return redact(buf.toString('utf8'));
  } finally {
    await fh.close();
  }
}

/** Incremental reader of a growing text file (e.g. metrics.jsonl). */
export class FileFollower {
  private offset = 0;
  private partial = '';
  constructor(private readonly path: string) {}
  /** Ignore what the file already holds (follow only what is appended from now on). */
  async skipToEnd(): Promise<void> {
    if (!existsSync(this.path)) return;
    const fh = await open(this.path, 'r');
    try {
      this.offset = (await fh.stat()).size;
      this.partial = '';
    } finally {
      await fh.close();
    }
  }
  async readNewLines(): Promise<string[]> {
    if (!existsSync(this.path)) return [];
    const fh = await open(this.path, 'r');
    try {
      const { size } = await fh.stat();
      if (size < this.offset) {
        this.offset = 0;
        this.partial = '';
      }
      if (size === this.offset) return [];
      const buf = Buffer.alloc(size - this.offset);
      await fh.read(buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.partial + buf.toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      return lines;
    } finally {
      await fh.close();
    }
  }
}

/**
 * How many processes the kernel's OOM killer has ended in this machine's (or container's) cgroup,
 * from cgroup v2 `memory.events`; null where that file is not readable. A rise during an attempt
 * that ended in SIGKILL tells an OOM kill apart from an operator's `kill -9`.
 */
export function oomKillCount(): number | null {
  for (const path of ['/sys/fs/cgroup/memory.events', '/sys/fs/cgroup/memory/memory.oom_control']) {
    try {
      const m = /oom_kill\s+(\d+)/.exec(readFileSync(path, 'utf8'));
      if (m) return Number(m[1]);
    } catch {
      /* not cgroup v2 / not readable */
    }
  }
  return null;
}
