/**
 * Checkpoint bookkeeping: keep the top `keep_top_k` complete checkpoints by `metric_name` plus the
 * newest; a checkpoint being written (`tmp_step_N`) is never counted or deleted.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointBook, CheckpointInfo } from '../common/types.js';

const STEP_DIR = /^step_(\d+)$/;
const TMP_DIR = /^tmp_step_\d+$/;

export interface RetentionRule {
  metricName: string;
  higherIsBetter: boolean;
  keepTopK: number;
}

export async function listCheckpoints(dir: string, metricName: string): Promise<{ complete: CheckpointInfo[]; inProgress: string[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return { complete: [], inProgress: [] };
  }
  const complete: CheckpointInfo[] = [];
  const inProgress: string[] = [];
  for (const name of names) {
    const full = join(dir, name);
    if (TMP_DIR.test(name)) {
      inProgress.push(name);
      continue;
    }
    const m = STEP_DIR.exec(name);
    if (!m) continue;
    try {
      if (!(await stat(full)).isDirectory()) continue;
      const info = JSON.parse(await readFile(join(full, 'training_info.json'), 'utf8')) as Record<string, unknown>;
      const v = info[metricName];
      const savedAt = typeof info.saved_at === 'number' ? Math.round(info.saved_at * 1000) : undefined;
      complete.push({ step: Number(m[1]), dir: full, metric: typeof v === 'number' && Number.isFinite(v) ? v : null, ...(savedAt ? { savedAtMs: savedAt } : {}) });
    } catch {
      // no (readable) training_info.json: incomplete, neither counted nor deleted
    }
  }
  complete.sort((a, b) => a.step - b.step);
  return { complete, inProgress: inProgress.sort() };
}

/** Pure retention decision. Missing metric ranks last; ties go to the higher step. */
export function decideRetention(complete: CheckpointInfo[], rule: RetentionRule): { keep: CheckpointInfo[]; remove: CheckpointInfo[]; best: CheckpointInfo | null; newest: CheckpointInfo | null } {
  if (complete.length === 0) return { keep: [], remove: [], best: null, newest: null };
  const newest = complete.reduce((a, b) => (b.step > a.step ? b : a));
  const worst = rule.higherIsBetter ? -Infinity : Infinity;
  const score = (c: CheckpointInfo) => (c.metric ?? worst);
  const ranked = [...complete].sort((a, b) => {
    const d = rule.higherIsBetter ? score(b) - score(a) : score(a) - score(b);
    return d !== 0 && !Number.isNaN(d) ? d : b.step - a.step;
  });
  const keepSet = new Set<number>(ranked.slice(0, rule.keepTopK).map((c) => c.step));
  keepSet.add(newest.step);
  const withMetric = ranked.filter((c) => c.metric !== null);
  const best = withMetric[0] ?? newest; // no metric anywhere → "best" degrades to newest
  return {
    keep: complete.filter((c) => keepSet.has(c.step)),
    remove: complete.filter((c) => !keepSet.has(c.step)),
    best,
    newest,
  };
}

/** Apply retention on disk (only complete step_N dirs; never tmp_step_N). */
export async function bookkeep(dir: string, rule: RetentionRule, opts: { dryRun?: boolean } = {}): Promise<CheckpointBook> {
  const { complete, inProgress } = await listCheckpoints(dir, rule.metricName);
  const d = decideRetention(complete, rule);
  if (!opts.dryRun) for (const c of d.remove) await rm(c.dir, { recursive: true, force: true });
  return { retained: d.keep, removed: d.remove.map((c) => c.step), best: d.best, newest: d.newest, inProgress };
}
