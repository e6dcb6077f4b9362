/** Short helper commands through execa: exit codes, captured output, log files, timeouts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
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
