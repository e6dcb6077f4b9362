/**
 * A trainer run made outside the pipeline (`python -m grpo_trainer train` and `evaluate` by hand, as in the
 * GPU studies of docs/trainer.md) scored by the rules the run summary uses: the reward on revisited tasks
 * rising, and validation accuracy above the baseline beyond chance. Pure: the `grpo score` verb reads files.
 */
import type { MetricRecord } from '../backends/types.js';
import { compareEvals, describeAccuracies, renderCriterion, rewardRising, valAboveBaseline, type Comparison, type Criterion, type EvalFile } from './criteria.js';

export interface ScoreInput {
  records: MetricRecord[];
  baseline: EvalFile | null;
  warm: EvalFile | null;
  final: EvalFile | null;
}

export interface ScoreResult {
  trainingSteps: number;
  criteria: Criterion[];
  workplace: Comparison;
  rewardSlope: number | null;
}

export function scoreRun(input: ScoreInput): ScoreResult {
  const workplace = compareEvals(input.baseline, input.final, input.warm);
  const reward = rewardRising(input.records);
  return {
    trainingSteps: input.records.filter((r) => r.kind === 'train').length,
    criteria: [reward.c, valAboveBaseline(workplace)],
    workplace,
    rewardSlope: reward.slope,
  };
}

export function renderScoreText(r: ScoreResult): string {
  const accuracies = describeAccuracies(r.workplace);
  return [
    `${r.trainingSteps} training step(s)`,
    ...r.criteria.map(renderCriterion),
    `Workplace validation accuracy (95% CI): ${accuracies.accuracies}`,
    ...(accuracies.grpoOverWarm ? [accuracies.grpoOverWarm] : []),
  ].join('\n') + '\n';
}
