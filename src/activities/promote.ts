/**
 * The promote stage: after the final evaluation, compare the run's best checkpoint with its line's
 * promoted model on the same validation tasks (src/promotion/decide.ts) and, only when it is better
 * beyond noise, promote it atomically: export the checkpoint as a Hugging Face model dir
 * (`python -m grpo_trainer export`), then switch the line's pointer, then append the decision to the
 * line's history (src/promotion/registry.ts). A rejection is recorded with its reason too.
 *
 * Idempotent: a retry finds its earlier decision in the history and returns it; one killed between
 * the pointer switch and the history append finds itself current and completes the record; one
 * killed before the switch decides again (the old model is still current).
 *
 * `promotedModel` tells the workflow which model to evaluate as the incumbent.
 */
import { existsSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/activity';
import { join } from 'node:path';
import { getBackend } from '../backends/index.js';
import { confirmCancel, log } from '../common/activity-context.js';
import { REPO_ROOT } from '../common/state.js';
import { trainerCommand } from '../common/trainer-command.js';
import type { EnvInfo, EvalResult, PromotionDecision, ResolvedRun } from '../common/types.js';
import { runTracked } from '../process/supervise.js';
import { decidePromotion, type BfclOverall } from '../promotion/decide.js';
import { appendHistory, baseModelName, exportDirFor, readCurrent, readHistory, switchPointer, withLineLock, type HistoryRecord, type PromotedPointer } from '../promotion/registry.js';
import type { EvalFile } from '../report/criteria.js';
import { readJson } from '../report/data.js';

/** Tests only: sleep this long between the export and the pointer switch (so a test can kill the process there). */
export const HOLD_ENV = 'GRPO_TEST_HOLD_BEFORE_POINTER_SWITCH_MS';

/** BFCL results as bfclEvaluate returns them (only the overall score is used). */
export interface BfclScore {
  overall: BfclOverall;
}

export interface PromoteModelInput {
  run: ResolvedRun;
  env: EnvInfo;
  /** The run's best checkpoint (a step dir), its final evaluation and its BFCL result. */
  candidate: { checkpointDir: string; step: number; eval: EvalResult | null; bfcl?: BfclScore | null };
  /** This run's evaluation of the line's promoted model (promotedModel's modelDir) on the same validation tasks. */
  incumbentEval: EvalResult | null;
  incumbentBfcl?: BfclScore | null;
  /** The run's baseline evaluation (compared with when the line has no promoted model yet). */
  baselineEval: EvalResult | null;
  baselineBfcl?: BfclScore | null;
}

export interface PromotedModel {
  line: string;
  modelDir: string;
  runId: string;
  step: number;
  accuracy: number;
}

/** The evaluation file behind an EvalResult (with its per-task results), or the result alone when the file is gone. */
function evalFile(e: EvalResult | null): EvalFile | null {
  if (!e) return null;
  return readJson<EvalFile>(e.outPath) ?? { accuracy: e.accuracy, num_tasks: e.numTasks, per_category: e.perCategory, model: e.model };
}

const decisionRecord = (d: PromotionDecision, pointer: PromotedPointer | null): HistoryRecord => ({ ...d, kind: 'decision', decision: d.promoted ? 'promoted' : 'rejected', pointer });

/** The line's promoted model, when there is one and its export is on disk. */
export async function promotedModel(input: { run: ResolvedRun }): Promise<PromotedModel | null> {
  const line = input.run.config.promotion.line;
  const p = readCurrent(input.run.paths.stateDir, line);
  if (!p || !existsSync(join(p.modelDir, 'config.json'))) return null;
  return { line, modelDir: p.modelDir, runId: p.runId, step: p.step, accuracy: p.accuracy };
}

export async function promoteModel(input: PromoteModelInput): Promise<PromotionDecision> {
  const { run, env, candidate } = input;
  const { line, margin, enabled } = run.config.promotion;
  const state = run.paths.stateDir;
  const common = { line, runId: run.runId, step: candidate.step, margin, candidate: null, incumbent: null, against: 'none' as const, delta: null, interval: null, pairedTasks: null, modelDir: null };
  if (!enabled) return { ...common, promoted: false, reason: 'not promoted: promotion.enabled is false', time: new Date().toISOString() };

  // A retry: the decision was made (and recorded) before.
  const earlier = readHistory(state, line).filter((r): r is Extract<HistoryRecord, { kind: 'decision' }> => r.kind === 'decision' && r.runId === run.runId && r.step === candidate.step).at(-1);
  if (earlier) return stripRecord(earlier);
  const current = readCurrent(state, line);
  if (current && current.runId === run.runId && current.step === candidate.step) {
    // Killed after the pointer switch, before the history append: finish the record.
    const d: PromotionDecision = { ...common, promoted: true, reason: `promoted: ${run.runId} step ${candidate.step} was made current by an earlier attempt (its record is written now)`, modelDir: current.modelDir, time: current.promotedAt };
    await withLineLock(state, line, () => appendHistory(state, line, decisionRecord(d, current)));
    return d;
  }

  if (!getBackend(run.config.backend).runsTrainerTools) {
    const d: PromotionDecision = { ...common, promoted: false, reason: `not promoted: export unsupported for backend ${run.config.backend} (grpo_trainer cannot export its checkpoints as a Hugging Face model dir)`, time: new Date().toISOString() };
    await withLineLock(state, line, () => appendHistory(state, line, decisionRecord(d, null)));
    return d;
  }

  const bfclOn = run.config.bfcl.enabled;
  const decided = decidePromotion({
    line,
    runId: run.runId,
    step: candidate.step,
    margin,
    candidate: evalFile(candidate.eval),
    current,
    incumbent: input.incumbentEval ? { file: evalFile(input.incumbentEval)!, modelPath: input.incumbentEval.model } : null,
    baseline: evalFile(input.baselineEval),
    bfcl: {
      enforce: bfclOn && run.config.promotion.bfcl_must_not_regress,
      candidate: bfclOn ? (candidate.bfcl?.overall ?? null) : null,
      incumbent: bfclOn ? (input.incumbentBfcl?.overall ?? null) : null,
      baseline: bfclOn ? (input.baselineBfcl?.overall ?? null) : null,
    },
  });
  if (!decided.promoted) {
    await withLineLock(state, line, () => appendHistory(state, line, decisionRecord(decided, null)));
    log('info', decided.reason, { line });
    return decided;
  }

  // 1. Export (no lock held: it takes a while; a kill here leaves at most an unreferenced export).
  const out = exportDirFor(state, line, run.runId, candidate.step);
  await exportCheckpoint(run, env, candidate.checkpointDir, out);

  // 2. + 3. Under the line's lock: the incumbent must still be the one compared with; switch, then record.
  return withLineLock(state, line, async () => {
    const now = readCurrent(state, line);
    if ((now?.runId ?? null) !== (current?.runId ?? null) || (now?.step ?? null) !== (current?.step ?? null)) {
      const d: PromotionDecision = {
        ...decided,
        promoted: false,
        reason: `not promoted: the line's promoted model changed to ${now ? `${now.runId} step ${now.step}` : 'none'} while this run was being promoted (it was compared with ${current ? `${current.runId} step ${current.step}` : 'none'})`,
        time: new Date().toISOString(),
      };
      await appendHistory(state, line, decisionRecord(d, null));
      return d;
    }
    const hold = Number(process.env[HOLD_ENV] ?? 0);
    if (hold > 0) {
      log('warn', `${HOLD_ENV}: holding ${hold} ms before the pointer switch (tests only)`);
      await new Promise((r) => setTimeout(r, hold));
    }
    const c = decided.candidate!;
    const pointer: PromotedPointer = {
      line,
      runId: run.runId,
      step: candidate.step,
      modelDir: out,
      accuracy: c.accuracy,
      numTasks: c.numTasks,
      bfcl: c.bfcl ?? null,
      baseModel: baseModelName(run.config.model),
      promotedAt: new Date().toISOString(),
    };
    const d: PromotionDecision = { ...decided, modelDir: out, time: pointer.promotedAt };
    await switchPointer(state, pointer);
    await appendHistory(state, line, decisionRecord(d, pointer));
    log('info', d.reason, { line, modelDir: out });
    return d;
  });
}

function stripRecord(r: Extract<HistoryRecord, { kind: 'decision' }>): PromotionDecision {
  const { kind: _kind, decision: _decision, pointer: _pointer, ...d } = r;
  return d;
}

/** `python -m grpo_trainer export --model <checkpoint> --out <dir> --overwrite` with the run's trainer environment. */
async function exportCheckpoint(run: ResolvedRun, env: EnvInfo, checkpointDir: string, out: string): Promise<void> {
  const cmd = trainerCommand(env.python, ['export', '--model', checkpointDir, '--out', out, '--overwrite']);
  const spec = { label: 'export for promotion', argv: cmd.argv, cwd: REPO_ROOT, env: cmd.env, passEnv: [] };
  const logFile = join(run.paths.logDir, 'promote-export.log');
  const r = await runTracked(spec, logFile, { tickMs: 3000, onTick: () => ({ stage: 'promote', checkpoint: checkpointDir }) });
  if (r.cancelled) confirmCancel();
  if (r.code !== 0 || !existsSync(join(out, 'config.json')))
    throw ApplicationFailure.create({ type: 'PromotionExportFailed', message: `export of ${checkpointDir} for promotion exited with code ${r.code}; see ${logFile}\n${r.tail.slice(-1500)}` });
}
