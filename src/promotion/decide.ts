/**
 * The promotion rule, a pure function of the evaluations (no I/O). A run's best checkpoint (the
 * candidate) replaces its line's promoted model (the incumbent) only when it is better beyond the
 * evaluation's noise by `margin`: the lower bound of the paired 95% interval of the per-task
 * difference candidate − incumbent (both evaluated on the same validation tasks, stats.ts) must
 * exceed the margin. A regression is never promoted. With BFCL results on both sides, a candidate
 * whose BFCL overall accuracy fell beyond noise (the whole unpaired 95% interval below zero) is
 * refused too. A line without a promoted model compares the candidate with the run's base model
 * (its baseline evaluation) when there is one, and otherwise takes it as its first model.
 */
import { resolve } from 'node:path';
import type { PromotionDecision, PromotionScore } from '../common/types.js';
import type { EvalFile } from '../report/criteria.js';
import { formatInterval, pairedDelta, unpairedDelta, wilson, type PairedDelta } from '../report/stats.js';

export interface BfclOverall {
  accuracy: number;
  correct?: number;
  total: number;
}

export interface DecideInput {
  line: string;
  runId: string;
  step: number;
  margin: number;
  /** The candidate's evaluation (per-task results), null when the run has none. */
  candidate: EvalFile | null;
  /** The line's promoted model now (current.json), null when nothing is promoted. */
  current: { runId: string; step: number; modelDir: string } | null;
  /** This run's evaluation of the incumbent on its validation tasks, and the model dir it evaluated. */
  incumbent: { file: EvalFile; modelPath: string } | null;
  /** The run's baseline evaluation (its base model). */
  baseline: EvalFile | null;
  /** BFCL overall of each side (null: not evaluated); `enforce`: bfcl.enabled and promotion.bfcl_must_not_regress. */
  bfcl?: { enforce: boolean; candidate: BfclOverall | null; incumbent: BfclOverall | null; baseline: BfclOverall | null };
  now?: Date;
}

const f3 = (v: number) => v.toFixed(3);
const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
const numTasks = (e: EvalFile) => e.num_tasks ?? e.results?.length ?? 0;

function score(e: EvalFile, bfcl: BfclOverall | null | undefined): PromotionScore {
  const n = numTasks(e);
  return { accuracy: e.accuracy, numTasks: n, interval: wilson(e.accuracy, n), bfcl: bfcl?.accuracy ?? null };
}

const describeScore = (s: PromotionScore) => `${f3(s.accuracy)} ${formatInterval(s.interval)} on ${s.numTasks} tasks`;
const describeDelta = (d: PairedDelta) => `delta ${signed(d.delta)}, 95% CI ${formatInterval(d.interval)} over ${d.tasks} paired tasks (${d.improved} better, ${d.regressed} worse)`;

/** Decide; `modelDir` is null (the caller fills it in once the export is current). */
export function decidePromotion(input: DecideInput): PromotionDecision {
  const { line, runId, step, margin, candidate, current, incumbent, baseline } = input;
  const bfcl = input.bfcl ?? { enforce: false, candidate: null, incumbent: null, baseline: null };
  const base: PromotionDecision = {
    promoted: false,
    reason: '',
    line,
    runId,
    step,
    against: 'none',
    candidate: candidate ? score(candidate, bfcl.candidate) : null,
    incumbent: null,
    delta: null,
    interval: null,
    pairedTasks: null,
    margin,
    bfclDelta: null,
    modelDir: null,
    time: (input.now ?? new Date()).toISOString(),
  };
  const refuse = (reason: string, extra: Partial<PromotionDecision> = {}): PromotionDecision => ({ ...base, ...extra, promoted: false, reason: `not promoted: ${reason}` });
  const who = `${runId} step ${step}`;
  if (!candidate) return refuse(`${who} has no final evaluation to compare`);
  const cand = base.candidate!;

  // What the candidate is compared with.
  let against: 'incumbent' | 'baseline' | 'none' = 'none';
  let ref: EvalFile | null = null;
  let refBfcl: BfclOverall | null = null;
  let refName = '';
  let refId: { runId: string | null; step: number | null } = { runId: null, step: null };
  if (current) {
    const where = `line ${line} has promoted model ${current.runId} step ${current.step}`;
    if (!incumbent) return refuse(`${where}, but this run did not evaluate it on its validation tasks`);
    if (resolve(incumbent.modelPath) !== resolve(current.modelDir))
      return refuse(`${where} (${current.modelDir}), but this run evaluated ${incumbent.modelPath}: the promoted model changed while the run was evaluating; not comparable`);
    against = 'incumbent';
    ref = incumbent.file;
    refBfcl = bfcl.incumbent;
    refName = `promoted ${current.runId} step ${current.step}`;
    refId = { runId: current.runId, step: current.step };
  } else if (baseline) {
    against = 'baseline';
    ref = baseline;
    refBfcl = bfcl.baseline;
    refName = 'the base model';
  }
  if (!ref) return { ...base, promoted: true, reason: `promoted: first model of line ${line} (no promoted model and no baseline evaluation to compare with); ${who} scored ${describeScore(cand)}` };

  const refScore = { ...score(ref, refBfcl), ...refId };
  const first = against === 'baseline' ? `first model of line ${line}, compared with the base model: ` : '';
  const scores = `${who} ${describeScore(cand)} vs ${refName} ${describeScore(refScore)}`;
  if (!candidate.results?.length || !ref.results?.length) return refuse(`${first}${scores}; per-task results are missing, and promotion needs the paired comparison`, { against, incumbent: refScore });
  const d = pairedDelta(ref.results, candidate.results);
  if (!d) return refuse(`${first}${scores}; fewer than 2 validation tasks in common, no paired comparison`, { against, incumbent: refScore });
  const stats = { against, incumbent: refScore, delta: d.delta, interval: d.interval, pairedTasks: d.tasks };
  const [lo, hi] = d.interval;
  const detail = `${scores}: ${describeDelta(d)}`;
  if (d.delta < 0 && hi < 0) return refuse(`${first}regression: ${detail}; a regression is never promoted`, stats);
  if (d.delta <= 0) return refuse(`${first}not better: ${detail}`, stats);
  if (!(lo > margin)) return refuse(`${first}not better beyond noise: ${detail}; the lower bound ${signed(lo)} does not exceed the margin ${f3(margin)}`, stats);

  let bfclDelta: PromotionDecision['bfclDelta'] = null;
  let bfclNote = '';
  if (bfcl.candidate && refBfcl) {
    const u = unpairedDelta({ accuracy: refBfcl.accuracy, n: refBfcl.total }, { accuracy: bfcl.candidate.accuracy, n: bfcl.candidate.total });
    if (u) {
      bfclDelta = { delta: u.delta, interval: u.interval };
      const what = `BFCL overall ${f3(refBfcl.accuracy)} (${refBfcl.total} entries) -> ${f3(bfcl.candidate.accuracy)} (${bfcl.candidate.total}): ${signed(u.delta)}, 95% CI ${formatInterval(u.interval)}`;
      if (bfcl.enforce && u.interval[1] < 0) return refuse(`${first}${detail}; but ${what}: BFCL regressed beyond noise (promotion.bfcl_must_not_regress)`, { ...stats, bfclDelta });
      bfclNote = `; ${what}${bfcl.enforce ? ', no regression beyond noise' : ' (not enforced)'}`;
    }
  }
  return { ...base, ...stats, bfclDelta, promoted: true, reason: `promoted: ${first}${detail}; the lower bound ${signed(lo)} exceeds the margin ${f3(margin)}${bfclNote}` };
}
