/**
 * The one reader of a checkpoint directory (NeMo RL's layout, which the built-in trainer writes
 * too): complete `step_N` dirs with their `training_info.json`, and `tmp_step_N` writes in
 * progress. The trainer owns retention (it deletes); the pipeline only reads, to report the
 * checkpoints, pick the best one and check that what is left is what retention promises.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointBook, CheckpointInfo } from '../common/types.js';

const STEP_DIR = /^step_(\d+)$/;
const TMP_DIR = /^tmp_step_\d+$/;

export interface RetentionRule {
  metricName: string;
  higherIsBetter: boolean;
  keepTopK: number;
}

/** Complete checkpoints (oldest first) and writes in progress. A step_N without a readable training_info.json is neither. */
export function listCheckpoints(dir: string, metricName: string): { complete: CheckpointInfo[]; inProgress: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { complete: [], inProgress: [] };
  }
  const complete: CheckpointInfo[] = [];
  const inProgress: string[] = [];
  for (const name of names) {
    if (TMP_DIR.test(name)) {
      inProgress.push(name);
      continue;
    }
    const m = STEP_DIR.exec(name);
    if (!m) continue;
    const full = join(dir, name);
    try {
      if (!statSync(full).isDirectory()) continue;
      const info = JSON.parse(readFileSync(join(full, 'training_info.json'), 'utf8')) as Record<string, unknown>;
      const v = info[metricName];
      const savedAt = typeof info.saved_at === 'number' ? Math.round(info.saved_at * 1000) : undefined;
      complete.push({ step: Number(m[1]), dir: full, metric: typeof v === 'number' && Number.isFinite(v) ? v : null, ...(savedAt ? { savedAtMs: savedAt } : {}) });
    } catch {
      // no (readable) training_info.json yet: not a complete checkpoint
    }
  }
  complete.sort((a, b) => a.step - b.step);
  return { complete, inProgress: inProgress.sort() };
}

/** What retention must leave: the top `keepTopK` by the metric (missing ranks last; ties to the newer) plus the newest. */
export function expectedRetention(complete: CheckpointInfo[], rule: RetentionRule): { keep: CheckpointInfo[]; best: CheckpointInfo | null; newest: CheckpointInfo | null } {
  if (complete.length === 0) return { keep: [], best: null, newest: null };
  const newest = complete.reduce((a, b) => (b.step > a.step ? b : a));
  const worst = rule.higherIsBetter ? -Infinity : Infinity;
  const score = (c: CheckpointInfo) => c.metric ?? worst;
  const ranked = [...complete].sort((a, b) => {
    const d = rule.higherIsBetter ? score(b) - score(a) : score(a) - score(b);
    return d !== 0 && !Number.isNaN(d) ? d : b.step - a.step;
  });
  const keepSet = new Set<number>(ranked.slice(0, rule.keepTopK).map((c) => c.step));
  keepSet.add(newest.step);
  // No metric anywhere: "best" degrades to the newest.
  const best = ranked.find((c) => c.metric !== null) ?? newest;
  return { keep: complete.filter((c) => keepSet.has(c.step)), best, newest };
}

/**
 * The run's checkpoints as the trainer left them: all complete ones, the best by the metric, the
 * newest, and what breaks the retention promise (more than top-k plus newest on disk).
 */
export function readCheckpointBook(dir: string, rule: RetentionRule): CheckpointBook {
  const { complete, inProgress } = listCheckpoints(dir, rule.metricName);
  const want = expectedRetention(complete, rule);
  const extra = complete.filter((c) => !want.keep.includes(c));
  const violations = extra.length ? [`retention left ${extra.map((c) => `step_${c.step}`).join(', ')} beyond the top ${rule.keepTopK} by ${rule.metricName} plus the newest`] : [];
  return { retained: complete, removed: [], best: want.best, newest: want.newest, inProgress, violations };
}
