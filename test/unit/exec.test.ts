/** Short helper commands through execa: exit codes, captured output, log files, timeouts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runCommand } from '../../src/common/exec.js';

test('captures stdout and stderr and returns the exit code instead of throwing', async () => {
  const r = await runCommand(['sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3);
  assert.match(r.output, /out/);
  assert.match(r.output, /err/);
});

test('a missing program is exit code 127', async () => {
  assert.equal((await runCommand(['/nonexistent/program'])).code, 127);
});

test('appends to a log file when given one', async () => {
  const log = join(mkdtempSync(join(tmpdir(), 'grpo-exec-')), 'x.log');
  await runCommand(['sh', '-c', 'echo first'], { logFile: log });
  await runCommand(['sh', '-c', 'echo second >&2'], { logFile: log });
  assert.equal(readFileSync(log, 'utf8'), 'first\nsecond\n');
});

test('a command past its timeout is stopped and reported as failed', async () => {
  const t0 = Date.now();
  const r = await runCommand(['sleep', '10'], { timeoutMs: 300 });
  assert.notEqual(r.code, 0);
  assert.ok(Date.now() - t0 < 5000);
});

test("the worker's own malloc setting (from scripts/grpo) does not reach its children; a user's does", async () => {
  const { childEnv } = await import('../../src/process/proc.js');
  const spec = { label: 't', argv: ['true'], cwd: '.', env: {}, passEnv: [] };
  const saved = { a: process.env.MALLOC_ARENA_MAX, m: process.env.GRPO_DEFAULT_MALLOC_ARENA_MAX };
  try {
    process.env.MALLOC_ARENA_MAX = '2';
    process.env.GRPO_DEFAULT_MALLOC_ARENA_MAX = '1';
    const set = childEnv(spec);
    assert.equal(set.MALLOC_ARENA_MAX, undefined);
    assert.equal(set.GRPO_DEFAULT_MALLOC_ARENA_MAX, undefined);
    delete process.env.GRPO_DEFAULT_MALLOC_ARENA_MAX;
    assert.equal(childEnv(spec).MALLOC_ARENA_MAX, '2');
  } finally {
    for (const [k, v] of [['MALLOC_ARENA_MAX', saved.a], ['GRPO_DEFAULT_MALLOC_ARENA_MAX', saved.m]] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
});

test('scripts/grpo starts node with two malloc arenas unless the caller chose a value', async () => {
  const script = join(import.meta.dirname, '..', '..', 'scripts', 'grpo');
  const show = ['-e', 'console.log(process.env.MALLOC_ARENA_MAX, process.env.GRPO_DEFAULT_MALLOC_ARENA_MAX ?? "-")'];
  // GRPO_NODE lets the wrapper run any node script path: point it at `node -e` through a shim.
  const dir = mkdtempSync(join(tmpdir(), 'grpo-wrapper-'));
  const shim = join(dir, 'node-shim');
  writeFileSync(shim, `#!/usr/bin/env bash\nexec "${process.execPath}" ${show.map((a) => `'${a}'`).join(' ')}\n`, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { ...process.env, GRPO_NODE: shim };
  delete env.MALLOC_ARENA_MAX;
  delete env.GRPO_DEFAULT_MALLOC_ARENA_MAX;
  assert.equal((await runCommand(['bash', script], { env })).output.trim(), '2 1');
  assert.equal((await runCommand(['bash', script], { env: { ...env, MALLOC_ARENA_MAX: '8' } })).output.trim(), '8 -');
});
