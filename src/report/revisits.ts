/**
 * One task's training reward across the steps that drew it (a GRPO pool of revisited tasks, or a run longer
 * than an epoch), and the change from its earlier visits to its later ones: what "reward rising" reads, so
 * that which task a step happened to draw does not decide it. Pure functions of the metrics records.
 */
import type { MetricRecord } from '../backends/types.js';

export interface TaskVisits {
  task: string;
  /** The task's mean reward at each step that drew it, in step order. */
  rewards: number[];
  /** At each visit, the variance of that mean (the rollouts' sample variance over their number), where
   * each rollout's reward is logged and a visit had at least 2. */
  meanVariances?: number[];
}

interface Visit {
  mean: number;
  meanVariance?: number;
}

/** Tasks drawn at two or more steps, with their mean reward at each. Where the trainer logs each rollout's
 * reward, every step counts for every task it drew; otherwise only steps whose rollouts all belong to one
 * task do (a step mixing tasks logs one mean, which no single task owns). */
export function revisitedTasks(records: MetricRecord[]): TaskVisits[] {
  const byStep = new Map<number, Map<string, Visit>>();
  for (const r of records) {
    if (r.kind !== 'train' || !r.taskIds?.length) continue;
    const perTask = r.rolloutRewards ? taskVisits(r.taskIds, r.rolloutRewards) : soleTaskVisit(r.taskIds, r.metrics['train/reward']);
    if (perTask) byStep.set(r.step, perTask);
    else byStep.delete(r.step);
  }
  const visits = new Map<string, Visit[]>();
  for (const [, perTask] of [...byStep.entries()].sort((a, b) => a[0] - b[0])) {
    for (const [task, visit] of perTask) visits.set(task, [...(visits.get(task) ?? []), visit]);
  }
  return [...visits.entries()]
    .filter(([, vs]) => vs.length > 1)
    .map(([task, vs]) => {
      const variances = vs.map((v) => v.meanVariance);
      return variances.every((v) => v !== undefined)
        ? { task, rewards: vs.map((v) => v.mean), meanVariances: variances as number[] }
        : { task, rewards: vs.map((v) => v.mean) };
    });
}

function taskVisits(taskIds: string[], rewards: number[]): Map<string, Visit> {
  const byTask = new Map<string, number[]>();
  taskIds.forEach((t, i) => byTask.set(t, [...(byTask.get(t) ?? []), rewards[i]!]));
  return new Map([...byTask].map(([t, xs]) => {
    const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
    if (xs.length < 2) return [t, { mean }];
    const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1);
    return [t, { mean, meanVariance: variance / xs.length }];
  }));
}

function soleTaskVisit(taskIds: string[], reward: number | undefined): Map<string, Visit> | null {
  return typeof reward === 'number' && new Set(taskIds).size === 1 ? new Map([[taskIds[0]!, { mean: reward }]]) : null;
}

function halves<T>(xs: T[]): { earlier: T[]; later: T[] } {
  const half = Math.floor(xs.length / 2);
  return { earlier: xs.slice(0, half), later: xs.slice(xs.length - half) };
}

/** A task's later visits against its earlier ones: mean of the later half minus mean of the earlier half
 * (an odd middle visit belongs to neither). With 2 or 3 visits that is last minus first; with more, every
 * visit counts, which is what lets a few rollouts per visit show a trend. */
export function laterMinusEarlier(rewards: number[]): number {
  const { earlier, later } = halves(rewards);
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  return mean(later) - mean(earlier);
}

/** Standard error of the mean of laterMinusEarlier over the tasks, from the spread of each visit's
 * rollouts (null unless every visit has one): how far sampling alone moves the statistic. */
export function laterMinusEarlierStandardError(tasks: TaskVisits[]): number | null {
  if (!tasks.length || tasks.some((t) => !t.meanVariances)) return null;
  const perTask = tasks.map((t) => {
    const { earlier, later } = halves(t.meanVariances!);
    const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    return (sum(earlier) + sum(later)) / earlier.length ** 2;
  });
  return Math.sqrt(perTask.reduce((a, v) => a + v, 0)) / tasks.length;
}
