/**
 * Real processes for the chaos suite: a Temporal dev server with a database file (so it can be
 * killed and restarted), `grpo worker` processes that can be SIGKILLed, and a /proc sampler that
 * watches which trainers run. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TEMPORAL } from '../helpers.js';
import { GRPO_BIN, workerSpawnEnv } from '../../src/worker/paths.js';
import { freeLocalPort, tcpReachable } from '../../src/server/index.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A free loopback port (the server module's helper). */
export const freePort = freeLocalPort;

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `temporal server start-dev` on a fixed loopback port with its SQLite file in `dir`. */
export class DevServer {
  private child: ChildProcess | null = null;
  constructor(
    readonly port: number,
    readonly dbFile: string,
    readonly logFile: string,
  ) {}
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const fd = openSync(this.logFile, 'a');
    this.child = spawn(TEMPORAL, ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(this.port), '--db-filename', this.dbFile, '--log-level', 'warn'], {
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    await waitFor('the Temporal dev server', () => tcpReachable(this.address, 500), 60_000);
  }
  kill9(): void {
    if (this.child?.pid) process.kill(-this.child.pid, 'SIGKILL');
    this.child = null;
  }
  async stop(): Promise<void> {
    const c = this.child;
    if (!c?.pid) return;
    process.kill(-c.pid, 'SIGTERM');
    await waitFor('the dev server to exit', () => c.exitCode !== null || c.signalCode !== null, 20_000).catch(() => process.kill(-c.pid!, 'SIGKILL'));
    this.child = null;
  }
}

/** One `grpo worker` process (its own process group, log appended to a file). */
export class WorkerProcess {
  private child: ChildProcess | null = null;
  constructor(
    readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}
  get pid(): number | undefined {
    return this.child?.pid;
  }
  start(): void {
    const fd = openSync(this.logFile, 'a');
    this.child = spawn(GRPO_BIN, ['worker', '--shutdown-grace', '5s'], { cwd: ROOT, env: workerSpawnEnv({ ...process.env, ...this.env }), stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
  }
  /** SIGKILL the worker process alone (what a crash or the OOM killer does); its children live on. */
  kill9(): void {
    if (this.child?.pid) process.kill(this.child.pid, 'SIGKILL');
    this.child = null;
  }
  async stop(): Promise<void> {
    const c = this.child;
    if (!c?.pid) return;
    c.kill('SIGTERM');
    await waitFor('the worker to exit', () => c.exitCode !== null || c.signalCode !== null, 30_000).catch(() => c.kill('SIGKILL'));
    this.child = null;
  }
}

interface ProcInfo {
  pid: number;
  ppid: number;
  cmd: string;
}

export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z') continue;
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmd) out.push({ pid: Number(e), ppid: Number(rest[1]), cmd });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Processes whose command line mentions any of `needles` (the run's dirs, its Ray temp dir). */
export function processesMentioning(needles: string[]): ProcInfo[] {
  return listProcesses().filter((p) => p.pid !== process.pid && needles.some((n) => p.cmd.includes(n)));
}

/**
 * Samples /proc every 200 ms for trainer processes of one checkpoint dir. A trainer is a
 * `grpo_trainer train` process whose parent is not itself such a process (a re-exec or helper
 * thread of the same trainer is not a second trainer).
 */
export class TrainerMonitor {
  maxConcurrent = 0;
  samples = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly seenPids = new Set<number>();
  constructor(private readonly checkpointDir: string) {}
  start(): void {
    this.timer = setInterval(() => this.sample(), 200);
  }
  sample(): void {
    const trainers = listProcesses().filter((p) => p.cmd.includes('grpo_trainer train') && p.cmd.includes(this.checkpointDir));
    const pids = new Set(trainers.map((t) => t.pid));
    const roots = trainers.filter((t) => !pids.has(t.ppid));
    for (const r of roots) this.seenPids.add(r.pid);
    this.maxConcurrent = Math.max(this.maxConcurrent, roots.length);
    this.samples++;
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

export function readJsonLines(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

export const joinPath = join;
