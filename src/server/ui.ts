/**
 * Web UI links to a run, printed only where a UI is known to be there: GRPO_TEMPORAL_UI_URL (any
 * server's UI), Temporal Cloud (an address under .tmprl.cloud), or a dev server that `grpo server` /
 * the quickstart started with its UI and that still runs (<state>/temporal/ui.json, its pid alive
 * and its UI port open).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerTarget } from '../common/connection.js';
import { serverDir } from '../common/state.js';
import { isAlive } from '../process/proc.js';
import { startDevServer, tcpReachable, type DevServerOptions } from './index.js';

interface DevServerRecord {
  address: string;
  uiUrl: string;
  pid: number;
}

const recordFile = (state: string) => join(serverDir(state), 'ui.json');
const normal = (address: string) => address.replace(/^localhost:/, '127.0.0.1:');

/** Remember a dev server with its UI, for the links `grpo run` and `grpo status` print. */
function recordDevServerUi(state: string, r: DevServerRecord): void {
  writeFileSync(recordFile(state), JSON.stringify(r) + '\n');
}

function forgetDevServerUi(state: string, pid: number): void {
  try {
    if ((JSON.parse(readFileSync(recordFile(state), 'utf8')) as DevServerRecord).pid === pid) rmSync(recordFile(state), { force: true });
  } catch {
    /* nothing recorded */
  }
}

/** startDevServer with its Web UI (not headless), recorded for the links while it runs. */
export async function startDevServerWithUi(o: Omit<DevServerOptions, 'headless'>): Promise<{ child: ChildProcess; uiUrl: string }> {
  const ip = o.ip ?? '127.0.0.1';
  const port = o.port ?? 7233;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const uiUrl = `http://${host}:${o.uiPort ?? port + 1000}`;
  const child = await startDevServer({ ...o, headless: false });
  // The UI comes up next to the gRPC port startDevServer waited for.
  for (let i = 0; i < 60 && child.exitCode === null && !(await tcpReachable(`${host}:${o.uiPort ?? port + 1000}`, 500)); i++) await new Promise((r) => setTimeout(r, 250));
  if (child.pid) {
    const pid = child.pid;
    recordDevServerUi(o.state, { address: `${host}:${port}`, uiUrl, pid });
    child.once('exit', () => forgetDevServerUi(o.state, pid));
  }
  return { child, uiUrl };
}

/** The base URL of a Web UI showing `target`'s namespace, or null when none is known to be there. */
export async function webUiBase(target: ServerTarget, state: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (env.GRPO_TEMPORAL_UI_URL) return env.GRPO_TEMPORAL_UI_URL.replace(/\/+$/, '');
  if (/\.tmprl\.cloud(:\d+)?$/.test(target.address)) return 'https://cloud.temporal.io';
  let r: DevServerRecord;
  try {
    r = JSON.parse(readFileSync(recordFile(state), 'utf8')) as DevServerRecord;
  } catch {
    return null;
  }
  if (normal(r.address) !== normal(target.address) || !isAlive(r.pid)) return null;
  const ui = new URL(r.uiUrl);
  return (await tcpReachable(`${ui.hostname}:${ui.port}`, 500)) ? r.uiUrl.replace(/\/+$/, '') : null;
}

export function workflowUrl(base: string, namespace: string, workflowId: string): string {
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** "Web UI: <link>" for a run, or null. */
export async function webUiLine(target: ServerTarget, state: string, workflowId: string): Promise<string | null> {
  const base = await webUiBase(target, state);
  return base ? `Web UI: ${workflowUrl(base, target.namespace, workflowId)}` : null;
}
