/** Shared test helpers: the CLI as a new user runs it, and a real Temporal dev server. */
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const GRPO = join(ROOT, 'scripts', 'grpo.js');
export const STATE = process.env.GRPO_STATE_DIR ?? join(ROOT, '.grpo');
export const TEMPORAL = join(STATE, 'tools', 'venv', 'bin', 'temporal');
export const FAKE_TRAINER = join(ROOT, 'test', 'doubles', 'fake-trainer-TEST-DOUBLE');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  out: string;
}

export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [GRPO, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, out: stdout + stderr });
    });
  });
}

let installed = false;
export function quietRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** A real dev server: the one `npm test` started (GRPO_TEST_TEMPORAL_ADDRESS) or a fresh one from the tools venv. */
export async function testEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  const address = process.env.GRPO_TEST_TEMPORAL_ADDRESS;
  if (address) return TestWorkflowEnvironment.createFromExistingServer({ address });
  return TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: TEMPORAL } } });
}

export const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
