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
import { compareEvals, criteriaVerdict, describeChange, evaluateCriteria, expectedCheckpointSteps, renderCriteriaText, slope, type CriteriaInput } from '../../src/report/criteria.js';
import { laterMinusEarlier } from '../../src/report/revisits.js';
import { collectReportData, savedSteps } from '../../src/report/data.js';
import { renderHtml, renderMarkdown } from '../../src/report/render.js';
import { reportPython, withReportSection, writeReportForDir } from '../../src/report/write.js';
import { stateDir } from '../../src/common/state.js';
import type { MetricRecord } from '../../src/backends/types.js';
import { parseMetricsJsonLine } from '../../src/backends/metrics.js';
import { evalFile, writeRunFixture } from '../report-fixture.js';
import { pairedDelta, wilson } from '../../src/report/stats.js';

const train = (rewards: number[]): MetricRecord[] => rewards.map((r, i) => ({ kind: 'train', step: i + 1, metrics: { 'train/reward': r } }));

function input(over: Partial<CriteriaInput> = {}): CriteriaInput {
  return {
    summary: { state: 'completed', steps: { completed: 12, total: 12 }, failures: [], ledger: [] },
    records: train([0.1, 0.2, 0.3, 0.4]),
    checkpoints: { saved: [6, 12], retained: [6, 12], best: 12 },
    savePeriod: 6,
    baseline: evalFile(40, 8),
    final: evalFile(40, 16),
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
      final: evalFile(40, 8),
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

test('reward rising on a pool of revisited tasks compares each task with itself, not the draw order', () => {
  // A pool of an easy task (a, ~1.0) and a hard one (b) drawn a, a, b, b: the slope falls with the draw
  // although each task's own reward rose.
  const steps: [string, number][] = [['a', 0.9], ['a', 1.0], ['b', 0.1], ['b', 0.3]];
  const pooled: MetricRecord[] = steps.map(([task, reward], i) => ({ kind: 'train', step: i + 1, metrics: { 'train/reward': reward }, taskIds: [task, task, task, task] }));
  const rose = evaluateCriteria(input({ records: pooled }));
  assert.ok(rose.rewardSlope! < 0, 'the draw order alone makes the slope negative');
  assert.equal(status(rose, 'reward_rising'), 'pass');
  assert.match(rose.criteria[0]!.detail, /last minus first visit \+0\.150 on average over 2 revisited task\(s\) \(a 0\.90>1\.00, b 0\.10>0\.30\)/);
  // the same tasks, each falling, fail though the draw order now makes the slope positive
  const fell = evaluateCriteria(input({ records: [['b', 0.3], ['b', 0.1], ['a', 1.0], ['a', 0.9]].map(([task, reward], i) => ({ kind: 'train' as const, step: i + 1, metrics: { 'train/reward': reward as number }, taskIds: [task as string] })) }));
  assert.ok(fell.rewardSlope! > 0);
  assert.equal(status(fell, 'reward_rising'), 'fail');
  // steps mixing tasks own no single task's reward: with no task revisited alone, the slope decides
  const mixed: MetricRecord[] = [0.1, 0.2, 0.3].map((reward, i) => ({ kind: 'train', step: i + 1, metrics: { 'train/reward': reward }, taskIds: ['a', 'b'] }));
  const bySlope = evaluateCriteria(input({ records: mixed }));
  assert.equal(status(bySlope, 'reward_rising'), 'pass');
  assert.match(bySlope.criteria[0]!.detail, /^least-squares slope \+0\.1000/);
  assert.match(bySlope.criteria[0]!.detail, /no task was revisited alone, so the slope also follows which tasks each step drew$/);
  // without task ids there is no draw to speak of
  const untagged = evaluateCriteria(input({ records: [0.1, 0.2].map((reward, i) => ({ kind: 'train' as const, step: i + 1, metrics: { 'train/reward': reward } })) }));
  assert.doesNotMatch(untagged.criteria[0]!.detail, /revisited/);
});

test('reward rising never shows a deciding value that rounds to a signless zero', () => {
  // Seen in a GPU run: a pass on a mean of +0.00013 read "+0.000". Task a rises by 0.0004, b falls by 0.0002.
  const visits: [string, number][] = [['a', 0.5], ['a', 0.5004], ['b', 0.3], ['b', 0.2998]];
  const tiny: MetricRecord[] = visits.map(([task, reward], i) => ({ kind: 'train', step: i + 1, metrics: { 'train/reward': reward }, taskIds: [task] }));
  const up = evaluateCriteria(input({ records: tiny }));
  assert.equal(status(up, 'reward_rising'), 'pass');
  assert.match(up.criteria[0]!.detail, /last minus first visit \+0\.00010 on average/);
  const down = evaluateCriteria(input({ records: tiny.map((r, i) => ({ ...r, metrics: { 'train/reward': visits[i ^ 1]![1] } })) }));
  assert.equal(status(down, 'reward_rising'), 'fail');
  assert.match(down.criteria[0]!.detail, /last minus first visit -0\.00010 on average/);
  // a slope that small keeps its sign too; values that round visibly keep three (or four) decimals
  const flat: MetricRecord[] = [0.5, 0.50001, 0.50002].map((reward, i) => ({ kind: 'train', step: i + 1, metrics: { 'train/reward': reward }, taskIds: ['a', 'b'] }));
  assert.match(evaluateCriteria(input({ records: flat })).criteria[0]!.detail, /^least-squares slope \+0\.000010 per step/);
});

test('reward rising follows each task through steps that draw several, and weighs all visits past three', () => {
  // Two tasks in every step, two rollouts each. a rises over its 4 visits, b dips at its last one: last minus
  // first says b fell, the halves say both rose. The step means, not any one task, decide the slope.
  const a = [0.0, 0.5, 0.5, 1.0];
  const b = [0.2, 0.6, 0.6, 0.0];
  const records: MetricRecord[] = a.map((ra, i) => ({
    kind: 'train', step: i + 1, metrics: { 'train/reward': (ra + b[i]!) / 2 },
    taskIds: ['a', 'b', 'a', 'b'], rolloutRewards: [ra, b[i]! + 0.1, ra, b[i]! - 0.1],
  }));
  const r = evaluateCriteria(input({ records }));
  assert.equal(status(r, 'reward_rising'), 'pass');
  // a: (0.5 + 1.0)/2 - (0.0 + 0.5)/2 = +0.5; b: (0.6 + 0.0)/2 - (0.2 + 0.6)/2 = -0.1; mean +0.2
  assert.match(r.criteria[0]!.detail, /later half of the visits minus the earlier half \+0\.200 on average over 2 revisited task\(s\) \(a 0\.00>0\.50>0\.50>1\.00, b 0\.20>0\.60>0\.60>0\.00\)/);
  // sampling error from the rollouts: a's two rollouts agree at every visit, b's differ by 0.2 (variance of each
  // visit's mean 0.01): b's change has variance (2 x 0.01 + 2 x 0.01) / 2^2 = 0.01, the mean over 2 tasks 0.1 / 2
  assert.match(r.criteria[0]!.detail, /, standard error 0\.050 from the spread of each visit's rollouts, so beyond sampling noise \(95%\);/);
  // a small rise among widely spread rollouts still passes (the mean is positive) but says it is noise:
  // a +0.05, b +0; each visit's two rollouts 0.6 apart (variance of its mean 0.09), standard error 0.212
  const noisy: MetricRecord[] = [0.5, 0.5, 0.5, 0.6].map((ra, i) => ({
    kind: 'train', step: i + 1, metrics: { 'train/reward': (ra + 0.5) / 2 },
    taskIds: ['a', 'b', 'a', 'b'], rolloutRewards: [ra + 0.3, 0.8, ra - 0.3, 0.2],
  }));
  const small = evaluateCriteria(input({ records: noisy }));
  assert.equal(status(small, 'reward_rising'), 'pass');
  assert.match(small.criteria[0]!.detail, /\+0\.025 on average over 2 revisited .*, standard error 0\.212 from the spread of each visit's rollouts, so within sampling noise \(95%\);/);
  // the same records without per-rollout rewards own no task's reward: the slope decides, and says so
  const untaggedRewards = evaluateCriteria(input({ records: records.map((x) => (x.kind === 'train' ? { kind: 'train', step: x.step, metrics: x.metrics, taskIds: x.taskIds } : x)) }));
  assert.match(untaggedRewards.criteria[0]!.detail, /^least-squares slope/);
  // three visits: the middle one belongs to neither half
  assert.ok(Math.abs(laterMinusEarlier([0.3, 0.9, 0.1]) - -0.2) < 1e-12);
});

test('metrics lines keep the task of each rollout when the trainer logs it', () => {
  const line = JSON.stringify({ kind: 'train', step: 3, 'train/reward': 0.5, 'train/task_ids': ['69', '69'] });
  assert.deepEqual(parseMetricsJsonLine(line), { kind: 'train', step: 3, metrics: { 'train/reward': 0.5 }, taskIds: ['69', '69'] });
  assert.deepEqual(parseMetricsJsonLine(JSON.stringify({ kind: 'train', step: 3, 'train/task_ids': [1, 2] })), { kind: 'train', step: 3, metrics: {} });
  // each rollout's reward comes along when it matches the task ids one to one
  const rewarded = JSON.stringify({ kind: 'train', step: 4, 'train/task_ids': ['1', '2'], 'train/rollout_rewards': [0.25, 1] });
  assert.deepEqual(parseMetricsJsonLine(rewarded), { kind: 'train', step: 4, metrics: {}, taskIds: ['1', '2'], rolloutRewards: [0.25, 1] });
  const short = JSON.stringify({ kind: 'train', step: 4, 'train/task_ids': ['1', '2'], 'train/rollout_rewards': [0.25] });
  assert.deepEqual(parseMetricsJsonLine(short), { kind: 'train', step: 4, metrics: {}, taskIds: ['1', '2'] });
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
    { category: 'a', baseline: 0.1, warm: null, final: 0.2, delta: 0.1 },
    { category: 'b', baseline: 0.3, warm: null, final: null, delta: null },
    { category: 'c', baseline: null, warm: null, final: 1, delta: null },
  ]);
  assert.ok(Math.abs(cmp.delta! - 0.1) < 1e-12, String(cmp.delta));
  assert.equal(cmp.sameTasks, null, 'files without per-task results cannot say');
  // differences stay unrounded until shown: 53 -> 55 of 138 is 0.01449, which rounded to 4 places first
  // (0.0145) would show as +0.015
  const gained2 = compareEvals({ accuracy: 53 / 138, per_category: { a: 53 / 138 } }, { accuracy: 55 / 138, per_category: { a: 55 / 138 } });
  assert.equal(gained2.perCategory[0]!.delta, 55 / 138 - 53 / 138);
  assert.equal(gained2.delta, 55 / 138 - 53 / 138);
  assert.equal(gained2.perCategory[0]!.delta!.toFixed(3), '0.014');
});

test('accuracy intervals: Wilson for one point, paired by task for a change', () => {
  // Wilson 95% for 8/40, by hand: centre (0.2 + z²/80) / (1 + z²/40) = 0.2263, half-width 0.1213
  const at4 = (i: number[] | null) => i?.map((v) => Math.round(v * 1e4) / 1e4);
  assert.deepEqual(at4(wilson(0.2, 40)), [0.105, 0.3476]);
  assert.deepEqual(at4(wilson(0, 12)), [0, 0.2425], 'never below 0 nor a zero-width interval at 0/12');
  assert.equal(wilson(0.5, 0), null);
  // exactly at 0 and 1 where the accuracy is (unrounded, 0/3 came out as 6e-17 and 4/4 as 0.9999999999999999)
  for (const n of [3, 4, 6, 12, 48, 138]) {
    assert.equal(wilson(0, n)![0], 0, `0/${n}`);
    assert.equal(wilson(1, n)![1], 1, `${n}/${n}`);
  }
  // 10 more tasks solved, none lost: the paired change is clear of zero
  const up = pairedDelta(evalFile(40, 8).results, evalFile(40, 18).results)!;
  assert.equal(up.delta, 0.25);
  assert.equal(up.improved, 10);
  assert.equal(up.regressed, 0);
  assert.ok(up.interval[0] > 0, JSON.stringify(up));
  // shown rounded once: 2 of 138 tasks gained is +0.01449 with a lower bound of -0.00552 (rounding the
  // stored values first read "+0.015 (95% CI [-0.005, 0.035]", seen on the nineteenth session's GPU run)
  const small = pairedDelta(evalFile(138, 53).results, evalFile(138, 55).results)!;
  assert.match(describeChange(small), /^\+0\.014 \(95% CI \[-0\.006, 0\.035\], paired over 138 tasks: 2 better, 0 worse\)$/);
  // the same accuracy reached by swapping which tasks are solved is no change at all
  const swapped = evalFile(40, 8).results.map((r) => ({ ...r, reward: r.task_id >= 8 && r.task_id < 16 ? 1 : 0 }));
  const flat = pairedDelta(evalFile(40, 8).results, swapped)!;
  assert.equal(flat.delta, 0);
  assert.ok(flat.interval[0] < 0 && flat.interval[1] > 0);
  // a small gain on few tasks is within noise: the criterion fails though final > baseline
  const noisy = evaluateCriteria(input({ baseline: evalFile(12, 1), final: evalFile(12, 2) }));
  assert.equal(status(noisy, 'val_above_baseline'), 'fail');
  assert.match(noisy.criteria[1]!.detail, /not beyond the 95% interval/);
  // different task sets at two points are never compared as if paired
  const other = evalFile(40, 30);
  other.results = other.results.map((r) => ({ ...r, task_id: r.task_id + 100 }));
  const mismatched = evaluateCriteria(input({ final: other }));
  assert.equal(status(mismatched, 'val_above_baseline'), 'fail');
  assert.match(mismatched.criteria[1]!.detail, /different tasks/);
});

test('three evaluation points: the warm start sits between base and GRPO in the comparison and the report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-report-warm-'));
  try {
    writeRunFixture(dir, { warm: true });
    const d = collectReportData(dir);
    const w = d.criteria.workplace;
    assert.deepEqual([w.baseline, w.warm, w.final], [0.2, 0.3, 0.4]);
    assert.equal(w.sameTasks, true);
    assert.equal(w.grpoOverWarm!.delta, 0.1);
    const md = renderMarkdown(d, []);
    assert.match(md, /\| category \| baseline \| warm start \| final \| difference \|/);
    assert.match(md, /\| overall \| 0\.200 \[0\.105, 0\.348\] \| 0\.300 \[[0-9.]+, [0-9.]+\] \| 0\.400 \[[0-9.]+, [0-9.]+\] \| \+0\.200 \(95% CI \[/);
    assert.match(md, /GRPO over the warm start alone: \+0\.100/);
    assert.match(md, /## BFCL v3: baseline, warm start and final/);
    assert.match(md, /\| BFCL category \| baseline \(base model\) \| warm start \| final \(best checkpoint\) \| difference \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
    assert.match(md, /\| overall \| 0\.200 \[0\.105, 0\.348\] \| 0\.400 \[[0-9.]+, [0-9.]+\] \| \+0\.200 \(95% CI \[[0-9.]+, [0-9.]+\], paired over 40 tasks: 8 better, 0 worse\) \|/);
    assert.match(md, /bfcl-eval 2025\.8\.5 \(BFCL_v3 data\)/);
    assert.match(md, /Categories: simple, multiple, parallel, multi_turn_base/);
    assert.match(md, /\| simple \| 0\.100 \(2\/20\) \| 0\.250 \(5\/20\) \| \+0\.150 \|/);
    assert.match(md, /\| step_4 \| n\/a \| removed by retention \|/);
    assert.match(md, /halved policy\.train_micro_batch_size 4 -> 2/);
    assert.match(md, /!\[Validation accuracy per step\]\(validation_accuracy\.png\)/);
    assert.match(md, /save_period: 4/);
    assert.match(md, /Overall: \*\*all hold\*\*/);
    const html = renderHtml(d, plots);
    assert.match(html, /<strong>Overall: all hold<\/strong>/);
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

test('criteria: a run that failed before training does not read as "all hold"', () => {
  // As a GPU run whose Ray head never started wrote it: no steps, no evaluations, no OOM.
  const r = evaluateCriteria(
    input({
      summary: { state: 'failed', steps: { completed: 0, total: 30 }, failures: [{ type: 'RayFailure' }], ledger: [] },
      records: [],
      checkpoints: { saved: [], retained: [], best: null },
      savePeriod: 10,
      baseline: null,
      final: null,
    }),
  );
  assert.deepEqual(r.criteria.map((c) => c.status), ['n/a', 'n/a', 'n/a', 'pass']);
  assert.equal(r.allHold, false);
  assert.equal(criteriaVerdict(r.criteria), 'none failed, but 3 of 4 could not be checked (n/a)');
  assert.match(renderCriteriaText(r), /^Success criteria \(seed\): none failed, but 3 of 4 could not be checked \(n\/a\)\n/);
  assert.equal(criteriaVerdict([...r.criteria.slice(0, 3), { ...r.criteria[3]!, status: 'fail' }]), 'NOT all hold');
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
    writeRunFixture(dir, { warm: true });
    const r = await writeReportForDir(dir, { python });
    assert.equal(r.plotError, null);
    assert.equal(r.plots, 3);
    for (const f of ['report.md', 'report.html', 'validation_accuracy.png', 'train_reward.png', 'evaluation_points.png', 'criteria.json']) assert.ok(existsSync(join(dir, 'report', f)), f);
    const html = readFileSync(r.html, 'utf8');
    assert.equal((html.match(/src="data:image\/png;base64,iVBORw0KGgo/g) ?? []).length, 3);
    // the three evaluation points, each with its interval, reach the plotter
    const points = JSON.parse(readFileSync(join(dir, 'report', 'report-data.json'), 'utf8')).points as { label: string; interval: number[] }[];
    assert.deepEqual(points.map((p) => p.label), ['base model', 'after warm start', 'after GRPO (best checkpoint)']);
    assert.ok(points.every((p) => p.interval.length === 2 && p.interval[0]! < p.interval[1]!));
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    assert.equal(summary.criteria.allHold, true);
    assert.equal(summary.report.html, r.html);
    assert.match(readFileSync(join(dir, 'summary.txt'), 'utf8'), /Success criteria \(seed\): all hold/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
