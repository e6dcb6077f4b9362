/** The workflow sandbox rules of eslint.config.js catch what would break replay. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { ROOT } from '../helpers.js';

const eslint = new ESLint({ cwd: ROOT });

async function problems(code: string, file: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  return r!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

test('workflow code may not use Node built-ins, I/O libraries, activity-side modules or process globals', async () => {
  const bad = [
    "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;",
    "import * as fs from 'fs';\nexport const x = fs;",
    "import { execa } from 'execa';\nexport const x = execa;",
    "import { Context } from '@temporalio/activity';\nexport const x = Context;",
    "import { trainSegment } from '../activities/train.js';\nexport const x = trainSegment;",
    "import { runCommand } from '../common/exec.js';\nexport const x = runCommand;",
    'export const x = process.env.HOME;',
    'export const x = performance.now();',
  ];
  for (const code of bad) assert.ok((await problems(code, 'src/workflows/probe.ts')).length > 0, `not caught in a workflow:\n${code}`);
});

test('the same code is fine outside workflows, and type-only imports of activities are fine inside', async () => {
  assert.deepEqual(await problems("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;", 'src/activities/probe.ts'), []);
  assert.deepEqual(await problems("import type * as activities from '../activities/index.js';\nexport type A = typeof activities;", 'src/workflows/probe.ts'), []);
  assert.deepEqual(await problems("import { log, sleep } from '@temporalio/workflow';\nexport const x = [log, sleep, Date.now(), Math.random()];", 'src/workflows/probe.ts'), []);
});
