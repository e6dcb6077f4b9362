/**
 * The promote stage: after the final evaluation, the run's best checkpoint is compared with the
 * line's promoted model on the same validation tasks (evaluated in this run) and promoted only
 * when it is better beyond the evaluation's noise (src/promotion/decide.ts). Deterministic code only.
 */
import type { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities/index.js';
import type { BfclResult } from '../activities/bfcl.js';
import type { CheckpointInfo, EvalResult, PromotionDecision, StageName } from '../common/types.js';
import type { LiveRun } from './carry.js';

export type { BfclResult };
import type { StatusTracker } from './tracker.js';

type Activities = ReturnType<typeof proxyActivities<typeof activities>>;
type Stage = <T>(name: StageName, fn: () => Promise<T>, detail?: (r: T) => string) => Promise<T>;

export interface PromoteDeps {
  t: StatusTracker;
  live: LiveRun;
  stage: Stage;
  light: Activities;
  /** The train queue's proxy: the incumbent's evaluation and the export run where the trainer runs. */
  heavy: Activities;
}

export async function promoteBest(d: PromoteDeps, target: CheckpointInfo | null): Promise<PromotionDecision | null> {
  const { t, live } = d;
  const status = t.status;
  const run = live.run;
  if (!run.config.promotion?.enabled) {
    t.setStage('promote', 'skipped', 'promotion.enabled is false');
    return null;
  }
  if (!target || !status.final) {
    t.setStage('promote', 'skipped', !target ? 'no checkpoint' : 'the best checkpoint was not evaluated (eval.final=false)');
    return null;
  }
  const decision = await d.stage(
    'promote',
    async () => {
      const incumbent = await d.light.promotedModel({ run });
      // With init_from: promoted the baseline evaluation already is the promoted model's, on the same tasks.
      const baselineIsIncumbent = !!incumbent && status.baseline?.model === incumbent.modelDir;
      let incumbentEval: EvalResult | null = baselineIsIncumbent ? status.baseline : null;
      if (incumbent && !incumbentEval)
        incumbentEval = await d.heavy.evaluate({ run, env: live.env!, data: live.data!, model: live.model!, ray: live.ray, which: 'promoted', modelPath: incumbent.modelDir });
      return d.heavy.promoteModel({
        run,
        env: live.env!,
        candidate: { checkpointDir: target.dir, step: target.step, eval: status.final, bfcl: live.bfcl?.final ?? null },
        incumbentEval,
        incumbentBfcl: baselineIsIncumbent ? live.bfcl?.baseline ?? null : null,
        baselineEval: status.baseline,
        baselineBfcl: live.bfcl?.baseline ?? null,
      });
    },
    (r) => r.reason,
  );
  status.promotion = decision;
  return decision;
}
