/**
 * The run report: success criteria (pure), data collection from a run dir, report.md / report.html
 * (self-contained: plots as data URIs), and the summary gaining the criteria. Plots are drawn by
 * the trainer environment's python when it has matplotlib (the test environment does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareEvals, evaluateCriteria, expectedCheckpointSteps, renderCriteriaText, slope, type CriteriaInput } from '../../src/report/criteria.js';
import { collectReportData, savedSteps } from '../../src/report/data.js';
import { renderHtml, renderMarkdown } from '../../src/report/render.js';
import { reportPython, withReportSection, writeReportForDir } from '../../src/report/write.js';
import { stateDir } from '../../src/common/state.js';
import type { MetricRecord } from '../../src/backends/types.js';
import { writeRunFixture } from '../report-fixture.js';

const train = (rewards: number[]): MetricRecord[] => rewards.map((r, i) => ({ kind: 'train', step: i + 1, metrics: { 'train/reward': r } }));

function input(over: Partial<CriteriaInput> = {}): CriteriaInput {
  return {
    summary: { state: 'completed', steps: { completed: 12, total: 12 }, failures: [], ledger: [] },
    records: train([0.1, 0.2, 0.3, 0.4]),
    checkpoints: { saved: [6, 12], retained: [6, 12], best: 12 },
    savePeriod: 6,
    baseline: { accuracy: 0.2, per_category: { a: 0.2 }, num_tasks: 5 },
    final: { accuracy: 0.4, per_category: { a: 0.4 }, num_tasks: 5 },
    ...over,
  };
}

const status = (r: ReturnType<typeof evaluateCriteria>, id: string) => r.criteria.find((c) => c.id === id)!.status;

test('criteria: all hold for a rising reward, a better final model, saves on schedule and no OOM', () => {
  const r = evaluateCriteria(input());
  assert.deepEqual(r.criteria.map((c) => c.status), ['pass', 'pass', 'pass', 'pass']);
  assert.equal(r.allHold, true);
  assert.ok(r.rewardSlope! > 0);
  assert.match(renderCriteriaText(r), /^Success criteria \(seed\): all hold\n {2}\[PASS\] train reward mean rising/);
});

test('criteria: flat reward, no improvement, a missing save and an unrecovered OOM each fail', () => {
  const r = evaluateCriteria(
    input({
      records: train([0.3, 0.3, 0.3]),
      final: { accuracy: 0.2 },
      checkpoints: { saved: [12], retained: [12], best: 12 },
      summary: { state: 'failed', steps: { completed: 12, total: 12 }, failures: [{ type: 'OutOfMemory' }], ledger: [{ type: 'OutOfMemory', action: 'gave up: micro batch at its minimum' }] },
    }),
  );
  assert.deepEqual(r.criteria.map((c) => c.status), ['fail', 'fail', 'fail', 'fail']);
  assert.equal(r.allHold, false);
  assert.match(r.criteria[2]!.detail, /missing 6/);
  assert.match(renderCriteriaText(r), /NOT all hold/);
});

test('criteria: a recovered OOM passes; missing data is n/a, not a failure', () => {
  const recovered = evaluateCriteria(input({ summary: { state: 'completed', steps: { completed: 12, total: 12 }, failures: [{ type: 'OutOfMemory' }], ledger: [{ type: 'OutOfMemory', action: 'halved micro batch' }] } }));
  assert.equal(status(recovered, 'oom_recovered'), 'pass');
  assert.match(recovered.criteria[3]!.detail, /all recovered \(halved micro batch\)/);
  const sparse = evaluateCriteria(input({ records: train([0.5]), final: null, savePeriod: null }));
  assert.equal(status(sparse, 'reward_rising'), 'n/a');
  assert.equal(status(sparse, 'val_above_baseline'), 'n/a');
  assert.equal(status(sparse, 'checkpoint_interval'), 'n/a');
});

test('criteria helpers: slope, expected saves, a step redone after a resume counts once, per-category deltas', () => {
  assert.equal(slope([{ step: 1, value: 0 }, { step: 2, value: 1 }, { step: 3, value: 2 }]), 1);
  assert.equal(slope([{ step: 1, value: 0 }]), null);
  assert.deepEqual(expectedCheckpointSteps(6, 14), [6, 12]);
  assert.deepEqual(expectedCheckpointSteps(null, 14), []);
  // step 2 was logged, lost in a crash and redone with another value: the redone one counts
  const redone = evaluateCriteria(input({ records: [...train([0.5, 0.9]), ...train([0.5, 0.1])] }));
  assert.equal(status(redone, 'reward_rising'), 'fail');
  const cmp = compareEvals({ accuracy: 0.2, per_category: { a: 0.1, b: 0.3 } }, { accuracy: 0.3, per_category: { a: 0.2, c: 1 } });
  assert.deepEqual(cmp.perCategory, [
    { category: 'a', baseline: 0.1, final: 0.2, delta: 0.1 },
    { category: 'b', baseline: 0.3, final: null, delta: null },
    { category: 'c', baseline: null, final: 1, delta: null },
  ]);
  assert.equal(cmp.delta, 0.1);
});

test("saved checkpoint steps come from the trainer's checkpoint_saved events, else NeMo RL's stdout", () => {
  const logDir = mkdtempSync(join(tmpdir(), 'grpo-saved-'));
  try {
    // A line cut short by a crash and a non-event line are skipped; the text in trainer.log is ignored when events exist.
    writeFileSync(join(logDir, 'trainer_events.jsonl'), [
      JSON.stringify({ event: 'running', step: 0, time: 1, pid: 7 }),
      JSON.stringify({ event: 'checkpoint_saved', step: 6, path: '/x/step_6', time: 2, removed: [] }),
      JSON.stringify({ event: 'checkpoint_saved', step: 12, path: '/x/step_12', time: 3, removed: [] }),
      '{"event": "checkpoint_sa',
    ].join('\n'));
    writeFileSync(join(logDir, 'trainer.log'), 'Saving checkpoint for step 99...\n');
    assert.deepEqual(savedSteps(logDir), [6, 12]);
    rmSync(join(logDir, 'trainer_events.jsonl'));
    writeFileSync(join(logDir, 'trainer.log'), 'Saving checkpoint for step 6...\nSaving checkpoint for step 12...\n');
    assert.deepEqual(savedSteps(logDir), [6, 12]);
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
});

test('report data and documents from a run dir: tables, ledger, BFCL version and categories, config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-report-'));
  try {
    writeRunFixture(dir);
    const d = collectReportData(dir, { now: new Date('2026-11-26T11:00:00Z') });
    assert.deepEqual(d.checkpoints.saved, [4, 8, 12]);
    assert.deepEqual(d.checkpoints.retained, [8, 12]);
    assert.equal(d.criteria.allHold, true, JSON.stringify(d.criteria.criteria));
    const plots = [{ id: 'validation_accuracy', file: 'validation_accuracy.png', title: 'Validation accuracy per step', caption: 'c', base64: 'iVBORw0KGgo=' }];
    const md = renderMarkdown(d, plots);
    assert.match(md, /\| overall \| 0\.200 \| 0\.400 \| \+0\.200 \|/);
    assert.match(md, /bfcl-eval 2025\.8\.5 \(BFCL_v3 data\)/);
    assert.match(md, /Categories: simple, multiple, parallel, multi_turn_base/);
    assert.match(md, /\| simple \| 0\.100 \(2\/20\) \| 0\.250 \(5\/20\) \| \+0\.150 \|/);
    assert.match(md, /\| step_4 \| n\/a \| removed by retention \|/);
    assert.match(md, /halved policy\.train_micro_batch_size 4 -> 2/);
    assert.match(md, /!\[Validation accuracy per step\]\(validation_accuracy\.png\)/);
    assert.match(md, /save_period: 4/);
    const html = renderHtml(d, plots);
    assert.match(html, /<img alt="Validation accuracy per step" src="data:image\/png;base64,iVBORw0KGgo=">/);
    assert.doesNotMatch(html, /<script|src="http|href="http/);
    assert.match(html, /<table id="ledger">/);
    // older summaries without a ledger still render
    writeRunFixture(dir, { noLedger: true });
    assert.match(renderMarkdown(collectReportData(dir), []), /has no ledger/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('summary.txt gets one criteria section, replaced on a rerun', () => {
  const r = evaluateCriteria(input());
  const once = withReportSection('GRPO run x: completed\nResults: /r\n', r, '/r/report/report.html');
  const twice = withReportSection(once, r, '/r/report/report.html');
  assert.equal(once, twice);
  assert.match(once, /Results: \/r\nSuccess criteria \(seed\): all hold\n[\s\S]*Report: \/r\/report\/report\.html\n$/);
});

test('writeReportForDir: plots drawn by matplotlib, self-contained HTML, summary states the criteria', { timeout: 240_000 }, async () => {
  const python = reportPython(stateDir());
  assert.ok(python, 'needs the trainer environment (npm test builds it) or GRPO_REPORT_PYTHON');
  const dir = mkdtempSync(join(tmpdir(), 'grpo-report-'));
  try {
    writeRunFixture(dir);
    const r = await writeReportForDir(dir, { python });
    assert.equal(r.plotError, null);
    assert.equal(r.plots, 2);
    for (const f of ['report.md', 'report.html', 'validation_accuracy.png', 'train_reward.png', 'criteria.json']) assert.ok(existsSync(join(dir, 'report', f)), f);
    const html = readFileSync(r.html, 'utf8');
    assert.equal((html.match(/src="data:image\/png;base64,iVBORw0KGgo/g) ?? []).length, 2);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    assert.equal(summary.criteria.allHold, true);
    assert.equal(summary.report.html, r.html);
    assert.match(readFileSync(join(dir, 'summary.txt'), 'utf8'), /Success criteria \(seed\): all hold/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
