/**
 * Confidence intervals for validation accuracy (pure functions). The pipeline owns this rule:
 * the trainer writes per-task rewards, the summary and the report compute the intervals here.
 * Values stay unrounded: whoever displays one rounds it once, since rounding here first made a change
 * of 2/138 = 0.01449 read "+0.015".
 */

/** z for a two-sided 95% interval. */
export const Z95 = 1.959964;

export type Interval = [number, number];

/**
 * Wilson score interval of an accuracy over n tasks. Chosen over the normal approximation because
 * it stays inside [0, 1] and is honest at the small n and extreme rates a 135M model produces.
 */
export function wilson(accuracy: number, n: number, z = Z95): Interval | null {
  if (!(n > 0) || !Number.isFinite(accuracy)) return null;
  const p = Math.min(1, Math.max(0, accuracy));
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // The interval always holds p; clamping to it keeps floating-point error (a lower bound of 6e-17 at
  // p = 0) from putting p outside it, which the report's error bars refuse as a negative length.
  return [Math.min(p, Math.max(0, centre - half)), Math.max(p, Math.min(1, centre + half))];
}

export interface TaskReward {
  task_id: unknown;
  reward: number;
}

export interface PairedDelta {
  /** Mean of (after - before) over the tasks both evaluations scored. */
  delta: number;
  interval: Interval;
  tasks: number;
  improved: number;
  regressed: number;
}

/**
 * The change between two evaluations of the same tasks, with a 95% interval from the per-task
 * differences. Pairing removes the task-difficulty variance both points share, so it resolves
 * smaller real changes than comparing two separate intervals. Null when fewer than two tasks pair up.
 */
export function pairedDelta(before: TaskReward[], after: TaskReward[], z = Z95): PairedDelta | null {
  const first = new Map(before.map((r) => [JSON.stringify(r.task_id), r.reward]));
  const diffs: number[] = [];
  for (const r of after) {
    const b = first.get(JSON.stringify(r.task_id));
    if (b !== undefined) diffs.push(r.reward - b);
  }
  const n = diffs.length;
  if (n < 2) return null;
  const mean = diffs.reduce((a, d) => a + d, 0) / n;
  const variance = diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1);
  const half = z * Math.sqrt(variance / n);
  return {
    delta: mean,
    interval: [mean - half, mean + half],
    tasks: n,
    improved: diffs.filter((d) => d > 0).length,
    regressed: diffs.filter((d) => d < 0).length,
  };
}

/** The same change from two unpaired accuracies (older evaluation files carry no per-task results). */
export function unpairedDelta(before: { accuracy: number; n: number }, after: { accuracy: number; n: number }, z = Z95): PairedDelta | null {
  if (!(before.n > 0 && after.n > 0)) return null;
  const v = (before.accuracy * (1 - before.accuracy)) / before.n + (after.accuracy * (1 - after.accuracy)) / after.n;
  const delta = after.accuracy - before.accuracy;
  const half = z * Math.sqrt(v);
  return { delta, interval: [delta - half, delta + half], tasks: Math.min(before.n, after.n), improved: 0, regressed: 0 };
}

export function formatInterval(i: Interval | null, d = 3): string {
  return i ? `[${i[0].toFixed(d)}, ${i[1].toFixed(d)}]` : '[n/a]';
}
