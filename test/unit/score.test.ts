/**
 * `grpo score`: a trainer run made by hand (metrics.jsonl and `evaluate` files) scored by the run summary's
 * rules, through the real CLI; bad input names the option and the file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scoreRun } from '../../src/report/score.js';
import { cli } from '../helpers.js';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'grpo-score-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Trainer metrics lines: each step draws tasks a and b, two rollouts each, with the given rewards. */
function metricsFile(name: string, steps: { a: number; b: number }[]): string {
  const path = join(dir, name);
  const lines = steps.map((s, i) => JSON.stringify({
    kind: 'train', step: i + 1, 'train/reward': (s.a + s.b) / 2,
    'train/task_ids': ['a', 'a', 'b', 'b'], 'train/rollout_rewards': [s.a, s.a, s.b, s.b],
  }));
  writeFileSync(path, [JSON.stringify({ kind: 'validation', step: 0, 'val:accuracy': 0.1 }), ...lines].join('\n') + '\n');
  return path;
}

/** An `evaluate --out` file over tasks t0..t(n-1), the first `solved` of them solved. */
function evalFile(name: string, n: number, solved: number): string {
  const path = join(dir, name);
  const results = Array.from({ length: n }, (_, i) => ({ task_id: `t${i}`, reward: i < solved ? 1 : 0 }));
  writeFileSync(path, JSON.stringify({ accuracy: solved / n, num_tasks: n, results }));
  return path;
}

test('scoreRun: reward rising on revisited tasks, and the paired changes base -> warm -> final', () => {
  const result = scoreRun({
    records: [{ kind: 'train', step: 1, metrics: { 'train/reward': 0.3 }, taskIds: ['a', 'b'], rolloutRewards: [0.2, 0.4] },
      { kind: 'train', step: 2, metrics: { 'train/reward': 0.5 }, taskIds: ['a', 'b'], rolloutRewards: [0.6, 0.4] }],
    baseline: { accuracy: 0.25, num_tasks: 4, results: [0, 1, 2, 3].map((i) => ({ task_id: `t${i}`, reward: i < 1 ? 1 : 0 })) },
    warm: null,
    final: { accuracy: 0.75, num_tasks: 4, results: [0, 1, 2, 3].map((i) => ({ task_id: `t${i}`, reward: i < 3 ? 1 : 0 })) },
  });
  assert.equal(result.trainingSteps, 2);
  assert.deepEqual(result.criteria.map((c) => [c.id, c.status]), [['reward_rising', 'pass'], ['val_above_baseline', 'fail']]);
  assert.match(result.criteria[0]!.detail, /last minus first visit \+0\.200 on average over 2 revisited task\(s\)/);
  assert.equal(result.workplace.change?.improved, 2);
});

test('grpo score prints the criteria and the three accuracies; --json carries the same result', async () => {
  const metrics = metricsFile('metrics.jsonl', [{ a: 0, b: 0.5 }, { a: 0.5, b: 0.5 }, { a: 1, b: 0.5 }]);
  const args = ['score', metrics, '--baseline', evalFile('base.json', 40, 4), '--warm', evalFile('warm.json', 40, 20), '--final', evalFile('final.json', 40, 30)];
  const text = await cli(args);
  assert.equal(text.code, 0, text.out);
  assert.match(text.stdout, /^3 training step\(s\)$/m);
  assert.match(text.stdout, /^\[PASS\] train reward mean rising: on the same tasks: last minus first visit \+0\.500/m);
  assert.match(text.stdout, /^\[PASS\] validation accuracy above baseline: best checkpoint 0\.750 vs base model 0\.100/m);
  assert.match(text.stdout, /baseline 0\.100 \[[\d.]+, [\d.]+\] → warm start 0\.500 \[[\d.]+, [\d.]+\] → final 0\.750/);
  assert.match(text.stdout, /^GRPO over the warm start alone: \+0\.250 .*10 better, 0 worse/m);
  const json = await cli([...args, '--json']);
  assert.equal(json.code, 0, json.out);
  const parsed = JSON.parse(json.stdout) as { trainingSteps: number; criteria: { id: string; status: string }[]; workplace: { warm: number } };
  assert.equal(parsed.trainingSteps, 3);
  assert.deepEqual(parsed.criteria.map((c) => c.status), ['pass', 'pass']);
  assert.equal(parsed.workplace.warm, 0.5);
});

test('grpo score: a missing file, a file without training records or an evaluation without accuracy is named, exit 2', async () => {
  const missing = await cli(['score', join(dir, 'nope.jsonl')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /file not found: .*nope\.jsonl/);
  const noTrain = join(dir, 'val-only.jsonl');
  writeFileSync(noTrain, JSON.stringify({ kind: 'validation', step: 0, 'val:accuracy': 0.2 }) + '\n');
  const empty = await cli(['score', noTrain]);
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /val-only\.jsonl: no training records/);
  const metrics = metricsFile('m2.jsonl', [{ a: 0, b: 0 }, { a: 1, b: 0 }]);
  const bad = join(dir, 'bad-eval.json');
  writeFileSync(bad, JSON.stringify({ acc: 0.5 }));
  const noAccuracy = await cli(['score', metrics, '--final', bad]);
  assert.equal(noAccuracy.code, 2);
  assert.match(noAccuracy.stderr, /--final .*bad-eval\.json: "accuracy" must be a number/);
  writeFileSync(bad, '{not json');
  const notJson = await cli(['score', metrics, '--baseline', bad]);
  assert.equal(notJson.code, 2);
  assert.match(notJson.stderr, /--baseline .*bad-eval\.json: not JSON/);
});
