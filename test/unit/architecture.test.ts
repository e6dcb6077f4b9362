/**
 * The house rules that keep the code findable: one stage per file with only stage activities
 * registered, no file in src/ over 400 lines, the CLI independent of the activities, backend
 * differences only behind src/backends/, and deterministic workflow code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers.js';
import * as activities from '../../src/activities/index.js';

const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const STAGE_ACTIVITIES = [
  'resolveRun', 'registerRunAttributes', 'checkRunIdentity', 'prepareEnvironment', 'checkTrainerConfig', 'prepareData', 'fetchModel', 'startRay', 'restartRay',
  'evaluate', 'warmStart', 'trainSegment', 'bookkeepCheckpoints', 'bfclEvaluate', 'promoteModel', 'promotedModel', 'writeSummary', 'writeReport', 'cleanupRun',
];

test('the worker registers exactly the stage activities, and the workflow calls only those', () => {
  assert.deepEqual(Object.keys(activities).sort(), [...STAGE_ACTIVITIES].sort());
  for (const [name, fn] of Object.entries(activities)) assert.equal(typeof fn, 'function', name);
  const workflow = files(join(SRC, 'workflows')).map((f) => readFileSync(f, 'utf8')).join('\n');
  const called = new Set([...workflow.matchAll(/\b(?:light|setup|trainer|evaluator|bfclRunner)\.(\w+)\(/g)].map((m) => m[1]!));
  assert.ok(called.size >= 10, `found the workflow's activity calls: ${[...called]}`);
  for (const name of called) assert.ok(STAGE_ACTIVITIES.includes(name), `the workflow calls ${name}, which is not a registered activity`);
});

test('every activity file is one stage (or the shared glue of stages)', () => {
  const glue = new Set(['index.ts', 'support.ts', 'failure.ts']);
  const stages = readdirSync(join(SRC, 'activities')).filter((n) => !glue.has(n));
  for (const f of stages) {
    const text = readFileSync(join(SRC, 'activities', f), 'utf8');
    const exported = [...text.matchAll(/^export async function (\w+)/gm)].map((m) => m[1]!);
    assert.ok(exported.length >= 1 && exported.every((e) => STAGE_ACTIVITIES.includes(e)), `${f} exports ${exported}`);
  }
});

test('no file in src/ is over 400 lines', () => {
  const big = files(SRC)
    .map((f) => ({ f: relative(ROOT, f), n: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((x) => x.n > 400);
  assert.deepEqual(big, []);
});

test('the CLI imports nothing from src/activities; backend names are compared only in src/backends', () => {
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const rel = relative(SRC, f);
    if (rel.startsWith('cli/')) assert.doesNotMatch(text, /from '(\.\.\/)+activities\//, `${rel} imports an activity module`);
    if (!rel.startsWith('backends/')) assert.doesNotMatch(text, /backend\s*[!=]==\s*'|'(builtin|nemo_rl)'\s*[!=]==/, `${rel} branches on a backend name`);
  }
});
