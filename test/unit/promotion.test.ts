/**
 * Promotion of better models (issue #13): the decision rule (better beyond noise promotes, within
 * noise or worse does not, a regression never), the registry's atomic pointer and rollback, and with
 * the REAL trainer and a tiny random model: a promotion killed between export and pointer switch
 * leaves the old model promoted; a normal one switches it; a worse run is refused and `grpo models`
 * says why; init_from: promoted starts training from the export; `grpo models rollback` goes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ROOT, uniq } from '../helpers.js';
import { fetchModel, prepareData, prepareEnvironment, resolveRun } from '../../src/activities/index.js';
import { HOLD_ENV, promoteModel, promotedModel, type PromoteModelInput } from '../../src/activities/promote.js';
import { backendCtx } from '../../src/activities/support.js';
import { getBackend } from '../../src/backends/index.js';
import { validateConfig } from '../../src/config/load.js';
import type { EvalResult, ResolvedRun } from '../../src/common/types.js';
import { HOST } from '../../src/process/proc.js';
import { runTracked } from '../../src/process/supervise.js';
import { decidePromotion, type DecideInput } from '../../src/promotion/decide.js';
import { appendHistory, currentPath, exportDirFor, promotedStack, readCurrent, readHistory, rollback, switchPointer, withLineLock, type PromotedPointer } from '../../src/promotion/registry.js';
import type { EvalFile } from '../../src/report/criteria.js';

/** An evaluation of tasks 0..n-1 with these rewards. */
const evalOf = (rewards: number[], model = 'm'): EvalFile => ({
  accuracy: rewards.reduce((a, r) => a + r, 0) / rewards.length,
  num_tasks: rewards.length,
  model,
  results: rewards.map((reward, task_id) => ({ task_id, reward })),
});
const ones = (n: number, of: number) => Array.from({ length: of }, (_, i) => (i < n ? 1 : 0));

const CURRENT = { runId: 'old', step: 6, modelDir: '/state/models/default/exports/old-step6' };
const decide = (over: Partial<DecideInput>) =>
  decidePromotion({ line: 'default', runId: 'new', step: 12, margin: 0, candidate: null, current: CURRENT, incumbent: null, baseline: null, now: new Date('2026-01-01T00:00:00Z'), ...over });
const vsIncumbent = (incumbent: number[], candidate: number[], over: Partial<DecideInput> = {}) =>
  decide({ candidate: evalOf(candidate), incumbent: { file: evalOf(incumbent), modelPath: CURRENT.modelDir }, ...over });

test('decision: better beyond noise promotes; the reason names the scores, the interval and the margin', () => {
  const d = vsIncumbent(ones(5, 40), ones(25, 40));
  assert.equal(d.promoted, true, d.reason);
  assert.equal(d.against, 'incumbent');
  assert.equal(d.delta, 0.5);
  assert.ok(d.interval![0] > 0, JSON.stringify(d.interval));
  assert.equal(d.pairedTasks, 40);
  assert.equal(d.incumbent?.runId, 'old');
  assert.deepEqual(d.candidate?.interval?.length, 2);
  assert.match(d.reason, /^promoted: new step 12 0\.625 \[[\d., ]+\] on 40 tasks vs promoted old step 6 0\.125 \[[\d., ]+\] on 40 tasks: delta \+0\.500, 95% CI \[0\.\d+, 0\.\d+\] over 40 paired tasks \(20 better, 0 worse\); the lower bound \+0\.\d+ exceeds the margin 0\.000$/);
});

test('decision: better within noise, not better, a margin not met, and a regression are refused', () => {
  const noise = vsIncumbent(ones(10, 40), [...ones(10, 40)].map((r, i) => (i >= 10 && i < 12 ? 1 : r)));
  assert.equal(noise.promoted, false);
  assert.match(noise.reason, /^not promoted: not better beyond noise: .*delta \+0\.050, 95% CI \[-0\.\d+, 0\.\d+\].*the lower bound -0\.\d+ does not exceed the margin 0\.000$/);

  const same = vsIncumbent(ones(10, 40), ones(10, 40));
  assert.equal(same.promoted, false);
  assert.match(same.reason, /^not promoted: not better: .*delta \+0\.000, 95% CI \[0\.000, 0\.000\]/);

  const margin = vsIncumbent(ones(5, 40), ones(25, 40), { margin: 0.45 });
  assert.equal(margin.promoted, false);
  assert.match(margin.reason, /does not exceed the margin 0\.450$/);

  const worse = vsIncumbent(ones(30, 40), ones(10, 40));
  assert.equal(worse.promoted, false);
  assert.match(worse.reason, /^not promoted: regression: new step 12 0\.250 .* vs promoted old step 6 0\.750 .*delta -0\.500.*; a regression is never promoted$/);
  // Even a (schema-refused) negative margin never lets a regression through.
  assert.equal(vsIncumbent(ones(12, 40), ones(10, 40), { margin: -1 }).promoted, false);
});

test('decision: without a promoted model, the base model is the bar; without either, the first model is promoted', () => {
  const first = decide({ current: null, candidate: evalOf(ones(3, 10)) });
  assert.equal(first.promoted, true);
  assert.equal(first.against, 'none');
  assert.match(first.reason, /^promoted: first model of line default \(no promoted model and no baseline evaluation to compare with\)/);

  const vsBase = decide({ current: null, candidate: evalOf(ones(3, 40)), baseline: evalOf(ones(20, 40)) });
  assert.equal(vsBase.promoted, false);
  assert.equal(vsBase.against, 'baseline');
  assert.match(vsBase.reason, /^not promoted: first model of line default, compared with the base model: regression: /);
  assert.equal(decide({ current: null, candidate: evalOf(ones(30, 40)), baseline: evalOf(ones(5, 40)) }).promoted, true);
});

test('decision: an incumbent this run did not evaluate, or another model than the current one, is not comparable', () => {
  assert.match(decide({ candidate: evalOf(ones(30, 40)) }).reason, /^not promoted: line default has promoted model old step 6, but this run did not evaluate it/);
  const other = decide({ candidate: evalOf(ones(30, 40)), incumbent: { file: evalOf(ones(1, 40)), modelPath: '/elsewhere' } });
  assert.equal(other.promoted, false);
  assert.match(other.reason, /the promoted model changed while the run was evaluating/);
  assert.match(decide({}).reason, /^not promoted: new step 12 has no final evaluation/);
  const { results: _r, ...noResults } = evalOf(ones(30, 40));
  assert.match(decide({ candidate: noResults, incumbent: { file: evalOf(ones(1, 40)), modelPath: CURRENT.modelDir } }).reason, /per-task results are missing/);
});

test('decision: with BFCL on both sides, a BFCL regression beyond noise is refused (when enforced)', () => {
  const bfcl = { candidate: { accuracy: 0.2, total: 100 }, incumbent: { accuracy: 0.6, total: 100 }, baseline: null };
  const refused = vsIncumbent(ones(5, 40), ones(25, 40), { bfcl: { enforce: true, ...bfcl } });
  assert.equal(refused.promoted, false);
  assert.match(refused.reason, /BFCL overall 0\.600 \(100 entries\) -> 0\.200 \(100\): -0\.400, 95% CI \[-0\.\d+, -0\.\d+\]: BFCL regressed beyond noise/);
  assert.ok(Math.abs(refused.bfclDelta!.delta - -0.4) < 1e-12, String(refused.bfclDelta?.delta));
  const notEnforced = vsIncumbent(ones(5, 40), ones(25, 40), { bfcl: { enforce: false, ...bfcl } });
  assert.equal(notEnforced.promoted, true);
  assert.match(notEnforced.reason, /\(not enforced\)$/);
  const small = vsIncumbent(ones(5, 40), ones(25, 40), { bfcl: { enforce: true, candidate: { accuracy: 0.5, total: 10 }, incumbent: { accuracy: 0.6, total: 10 }, baseline: null } });
  assert.equal(small.promoted, true, 'a BFCL drop within noise does not block');
});

test('config: init_from and promotion defaults, a line must be a safe file name and not a model cache dir', () => {
  const base = { trainer: { grpo: { max_num_steps: 2, val_period: 1 }, checkpointing: { keep_top_k: 1, save_period: 1 } } };
  const c = validateConfig(base).config;
  assert.equal(c.init_from, 'base');
  assert.deepEqual(c.promotion, { enabled: false, line: 'default', margin: 0, bfcl_must_not_regress: true });
  assert.throws(() => validateConfig(base, ['promotion.line=../x']), /promotion\.line: expected a file name/);
  assert.throws(() => validateConfig(base, ['promotion.line=tiny-random']), /promotion\.line: a line name other than hub, tiny-random/);
  assert.throws(() => validateConfig(base, ['promotion.margin=-0.1']), /promotion\.margin/);
  assert.throws(() => validateConfig(base, ['init_from=best']), /init_from: expected one of "base", "promoted"/);
});

const pointer = (runId: string, step: number, dir: string): PromotedPointer => ({ line: 'l', runId, step, modelDir: dir, accuracy: 0.5, numTasks: 10, bfcl: null, baseModel: 'tiny-random', promotedAt: new Date().toISOString() });

test('registry: atomic pointer, history in order, rollback one step at a time, and a clear error at the first model', async () => {
  const state = mkdtempSync(join(tmpdir(), 'grpo-registry-'));
  try {
    await assert.rejects(rollback(state, 'l'), /nothing to roll back to: line l has no promoted model/);
    const dirs = ['a', 'b', 'c'].map((r) => {
      const d = exportDirFor(state, 'l', r, 1);
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'config.json'), '{}');
      return d;
    });
    for (const [i, r] of ['a', 'b', 'c'].entries()) {
      const p = pointer(r, 1, dirs[i]!);
      await switchPointer(state, p);
      await appendHistory(state, 'l', { kind: 'decision', decision: 'promoted', line: 'l', runId: r, step: 1, promoted: true, reason: 'x', against: 'none', candidate: null, incumbent: null, delta: null, interval: null, pairedTasks: null, margin: 0, modelDir: p.modelDir, time: p.promotedAt, pointer: p });
    }
    assert.deepEqual(readdirSync(join(state, 'models', 'l')).sort(), ['current.json', 'exports', 'history.jsonl'], 'no temp file left behind');
    assert.equal(readCurrent(state, 'l')?.runId, 'c');
    // A torn last line (a crash mid-append) is skipped.
    writeFileSync(join(state, 'models', 'l', 'history.jsonl'), readFileSync(join(state, 'models', 'l', 'history.jsonl'), 'utf8') + '{"kind":"deci');
    assert.equal(readHistory(state, 'l').length, 3);
    assert.equal((await rollback(state, 'l')).reason, `rolled back from c step 1 to b step 1 (promoted ${readCurrent(state, 'l')!.promotedAt})`);
    assert.equal(readCurrent(state, 'l')?.runId, 'b');
    await rollback(state, 'l');
    assert.equal(readCurrent(state, 'l')?.runId, 'a');
    await assert.rejects(rollback(state, 'l'), /nothing to roll back to: a step 1 is the first promoted model of line l/);
    assert.deepEqual(readHistory(state, 'l').map((r) => r.decision), ['promoted', 'promoted', 'promoted', 'rollback', 'rollback']);
    // A pointer the history does not know yet (killed after the switch, before the append) counts as current.
    await switchPointer(state, pointer('d', 2, dirs[2]!));
    assert.deepEqual(promotedStack(state, 'l').map((p) => p.runId), ['a', 'd']);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('registry: the lock of a dead process is taken over; a live holder is waited for, then named', async () => {
  const state = mkdtempSync(join(tmpdir(), 'grpo-lock-'));
  try {
    const gone = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => gone.once('exit', r));
    mkdirSync(join(state, 'models', 'l'), { recursive: true });
    const lock = join(state, 'models', 'l', '.lock');
    writeFileSync(lock, JSON.stringify({ pid: gone.pid, pidStart: null, host: HOST, since: 'then' }));
    assert.equal(await withLineLock(state, 'l', async () => 42, 2000), 42);
    assert.equal(existsSync(lock), false, 'released');
    writeFileSync(lock, JSON.stringify({ pid: process.pid, pidStart: null, host: HOST, since: 'now' }));
    await assert.rejects(withLineLock(state, 'l', async () => 0, 500), new RegExp(`promotion line l is locked by pid ${process.pid}`));
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The real thing: tiny random model, the trainer's own exporter and training, a real SIGKILL.

const setFor = (line: string, extra: string[] = []) => [
  'model.source=tiny-random',
  'ray.enabled=false',
  'trainer.warm_start.enabled=false',
  'trainer.grpo.max_num_steps=1',
  'trainer.grpo.val_period=1',
  'trainer.grpo.max_val_samples=2',
  'trainer.grpo.val_batch_size=2',
  'trainer.checkpointing.save_period=1',
  'trainer.checkpointing.keep_top_k=1',
  'trainer.policy.generation.max_new_tokens=16',
  'run.segment_handoff_timeout_s=0',
  'promotion.enabled=true',
  `promotion.line=${line}`,
  ...extra,
];

/** An evaluation file in the run's eval dir, as the evaluate stage returns it. */
function writeEval(run: ResolvedRun, name: string, rewards: number[], model: string): EvalResult {
  const f = { ...evalOf(rewards, model), per_category: {} };
  const outPath = join(run.paths.evalDir, `${name}.json`);
  writeFileSync(outPath, JSON.stringify(f));
  return { accuracy: f.accuracy, perCategory: {}, numTasks: rewards.length, outPath, model };
}

/** One GRPO step with the builtin backend's own launch command (what trainSegment runs); returns the log. */
async function trainOneStep(run: ResolvedRun, input: Pick<PromoteModelInput, 'env'> & { data: Awaited<ReturnType<typeof prepareData>>; model: Awaited<ReturnType<typeof fetchModel>> }): Promise<string> {
  const spec = getBackend(run.config.backend).launch(backendCtx(run, { env: input.env, data: input.data, model: input.model, ray: null }), 1);
  const log = join(run.paths.logDir, 'trainer.log');
  const r = await runTracked(spec, log);
  assert.equal(r.code, 0, r.tail);
  assert.ok(existsSync(join(run.paths.checkpointDir, 'step_1', 'policy', 'weights', 'config.json')), 'a checkpoint at step 1');
  return readFileSync(log, 'utf8');
}

test('promotion with the real exporter: killed between export and pointer switch the old model stays; a better run is promoted, a worse one refused; init_from: promoted trains from it; grpo models and rollback', { timeout: 20 * 60_000 }, async () => {
  const line = uniq('test-line');
  const runs: ResolvedRun[] = [];
  const resolve = async (extra: string[] = [], l = line) => {
    const r = await resolveRun({ configPath: join(ROOT, 'configs', 'builtin-cpu.yaml'), set: setFor(l, extra), workflowId: uniq('promo') });
    runs.push(r);
    return r;
  };
  const runA = await resolve();
  const state = runA.paths.stateDir;
  const env = await prepareEnvironment({ run: runA });
  const data = await prepareData({ run: runA, env });
  try {
    // Run A: a real checkpoint; the first model of the line (nothing to compare with).
    const base = await fetchModel({ run: runA, env });
    assert.equal(base.initFrom, 'base');
    await trainOneStep(runA, { env, data, model: base });
    const ckA = join(runA.paths.checkpointDir, 'step_1');
    const a = await promoteModel({ run: runA, env, candidate: { checkpointDir: ckA, step: 1, eval: writeEval(runA, 'final', ones(2, 8), ckA) }, incumbentEval: null, baselineEval: null });
    assert.equal(a.promoted, true, a.reason);
    assert.match(a.reason, new RegExp(`first model of line ${line}`));
    const exportA = exportDirFor(state, line, runA.runId, 1);
    assert.equal(a.modelDir, exportA);
    assert.ok(existsSync(join(exportA, 'config.json')) && existsSync(join(exportA, 'grpo_export.json')), 'an HF model dir');
    assert.deepEqual(await promotedModel({ run: runA }), { line, modelDir: exportA, runId: runA.runId, step: 1, accuracy: 0.25 });

    // Run B, better than A beyond noise: promoted in a child process that is SIGKILLed after the export, before the switch.
    const runB = await resolve();
    const inputB: PromoteModelInput = {
      run: runB,
      env,
      candidate: { checkpointDir: ckA, step: 1, eval: writeEval(runB, 'final', ones(7, 8), ckA) },
      incumbentEval: writeEval(runB, 'incumbent', ones(0, 8), exportA),
      baselineEval: null,
    };
    const inputFile = join(runB.paths.runDir, 'promote-input.json');
    writeFileSync(inputFile, JSON.stringify(inputB));
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'support', 'promote-child.ts'), inputFile], {
      cwd: ROOT,
      env: { ...process.env, [HOLD_ENV]: '600000', GRPO_QUIET: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const exportB = exportDirFor(state, line, runB.runId, 1);
    for (let i = 0; i < 600 && !out.includes('holding'); i++) await new Promise((r) => setTimeout(r, 500));
    assert.match(out, /holding 600000 ms before the pointer switch/, out);
    assert.ok(existsSync(join(exportB, 'config.json')), 'the export is complete when the process is killed');
    child.kill('SIGKILL');
    assert.equal((await exited).signal, 'SIGKILL');
    assert.equal(readCurrent(state, line)?.runId, runA.runId, 'the old model is still promoted');
    assert.equal(JSON.parse(readFileSync(currentPath(state, line), 'utf8')).modelDir, exportA);
    assert.ok(!readHistory(state, line).some((r) => r.runId === runB.runId), 'no record of the killed promotion');

    // The same promotion again, not killed: it takes over the dead process's lock and switches the pointer.
    const b = await promoteModel(inputB);
    assert.equal(b.promoted, true, b.reason);
    assert.match(b.reason, new RegExp(`^promoted: ${runB.runId} step 1 0\\.875 .* vs promoted ${runA.runId} step 1 0\\.000 .*delta \\+0\\.875`));
    assert.equal(readCurrent(state, line)?.modelDir, exportB);
    assert.deepEqual(await promoteModel(inputB), b, 'a retry returns the recorded decision');

    // Run C, worse than B: refused; B stays.
    const runC = await resolve();
    const c = await promoteModel({
      run: runC,
      env,
      candidate: { checkpointDir: ckA, step: 1, eval: writeEval(runC, 'final', ones(1, 8), ckA) },
      incumbentEval: writeEval(runC, 'incumbent', ones(7, 8), exportB),
      baselineEval: writeEval(runC, 'baseline', ones(0, 8), 'base'),
    });
    assert.equal(c.promoted, false);
    assert.match(c.reason, /^not promoted: regression: .*a regression is never promoted$/);
    assert.equal(readCurrent(state, line)?.runId, runB.runId);
    assert.equal(existsSync(exportDirFor(state, line, runC.runId, 1)), false, 'nothing exported for a refused run');

    // init_from: promoted: the trainer starts from B's export (policy.model_name) and trains.
    const runD = await resolve(['init_from=promoted']);
    const fromPromoted = await fetchModel({ run: runD, env });
    assert.equal(fromPromoted.modelDir, exportB);
    assert.equal(fromPromoted.initFrom, 'promoted');
    assert.deepEqual(fromPromoted.promoted, { line, runId: runB.runId, step: 1 });
    assert.match(fromPromoted.fingerprint, /^[0-9a-f]{16}$/);
    const log = await trainOneStep(runD, { env, data, model: fromPromoted });
    assert.ok(log.includes(`policy.model_name=${exportB}`), 'the trainer was given the export as its policy');
    const empty = await resolve(['init_from=promoted'], uniq('test-empty'));
    const fallback = await fetchModel({ run: empty, env });
    assert.equal(fallback.modelDir, base.modelDir);
    assert.match(fallback.warning ?? '', /init_from: promoted, but line test-empty-\S+ has no promoted model yet; starting from the base model/);

    // grpo models: the history with why; rollback goes back one, then there is nothing left to go back to.
    const cliEnv = { env: { GRPO_STATE_DIR: state } };
    const shown = await cli(['models', '--line', line], cliEnv);
    assert.equal(shown.code, 0, shown.out);
    assert.match(shown.stdout, new RegExp(`current model ${runB.runId} step 1`));
    assert.match(shown.stdout, new RegExp(`\\* .*${runB.runId} step 1 +promoted`));
    assert.match(shown.stdout, new RegExp(`${runC.runId} step 1 +rejected .*not promoted: regression`));
    const json = JSON.parse((await cli(['models', '--line', line, '--json'], cliEnv)).stdout) as { current: PromotedPointer; history: { decision: string }[] };
    assert.equal(json.current.runId, runB.runId);
    assert.deepEqual(json.history.map((r) => r.decision), ['promoted', 'promoted', 'rejected']);
    const back = await cli(['models', 'rollback', '--line', line], cliEnv);
    assert.equal(back.code, 0, back.out);
    assert.match(back.stdout, new RegExp(`rolled back from ${runB.runId} step 1 to ${runA.runId} step 1`));
    assert.equal(readCurrent(state, line)?.modelDir, exportA);
    const none = await cli(['models', 'rollback', '--line', line], cliEnv);
    assert.equal(none.code, 1, none.out);
    assert.match(none.stderr, new RegExp(`nothing to roll back to: ${runA.runId} step 1 is the first promoted model of line ${line}`));
    assert.match((await cli(['models', '--line', uniq('test-none')], cliEnv)).stdout, /no promotion history/);
  } finally {
    rmSync(join(state, 'models', line), { recursive: true, force: true });
    for (const r of runs) rmSync(r.paths.runDir, { recursive: true, force: true });
  }
});
