/**
 * Everything the run report shows, read from a run directory:
 * summary.json, logs/metrics.jsonl, the trainer's checkpoint events, eval/{baseline,final}.json,
 * bfcl/{baseline,final}/bfcl.json, config.resolved.yaml and the checkpoints still on disk.
 * Missing pieces are null, so a failed or cancelled run still gets a report.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readTrainerEvents } from '../backends/events.js';
import { parseMetricsJsonLine } from '../backends/metrics.js';
import { listCheckpoints } from '../checkpoints/reader.js';
import type { MetricRecord } from '../backends/types.js';
import { evaluateCriteria, type CheckpointHistory, type CriteriaResult, type EvalFile, type SummaryLike } from './criteria.js';

export interface BfclCategory {
  accuracy: number;
  correct: number;
  total: number;
  ids: string[];
}

/** `python -m grpo_trainer bfcl` output (bfcl.json). */
export interface BfclFile {
  package: string;
  version: string;
  data_version: string;
  label?: string | null;
  model?: string;
  served_model_dir?: string;
  mode?: string;
  categories: Record<string, BfclCategory>;
  overall: { accuracy: number; correct: number; total: number };
  settings?: Record<string, unknown>;
  timings?: Record<string, number>;
}

/** The run summary as written by writeSummary, read tolerantly (fields vary across versions). */
export type SummaryFile = Omit<SummaryLike, 'failures' | 'ledger'> & {
  runId: string;
  backend?: string;
  configSource?: string;
  baselineAccuracy?: number | null;
  finalAccuracy?: number | null;
  finalModel?: string | null;
  checkpoints?: { step: number; dir: string; metric: number | null }[];
  best?: { step: number; dir: string; metric: number | null } | null;
  metricName?: string;
  startedAt?: string;
  finishedAt?: string;
  elapsedSeconds?: number;
  runDir?: string;
  warnings?: string[];
  configChanges?: string[];
  recoveries?: number;
  failures?: { stage: string; attempt?: number; type: string; message: string; step?: number | null; time?: string }[];
  ledger?: LedgerLike[];
};

/** A lost-work ledger entry (LedgerEntry in common/types.ts), read tolerantly. */
export interface LedgerLike {
  time?: string;
  stage?: string;
  type: string;
  action: string;
  stepsLost?: number | null;
  timeLostSeconds?: number | null;
  recoverySeconds?: number | null;
  message?: string;
  detail?: string;
}

export interface ReportData {
  runId: string;
  runDir: string;
  generatedAt: string;
  summary: SummaryFile | null;
  records: MetricRecord[];
  baseline: EvalFile | null;
  /** After the supervised warm start (null: the run had none). */
  warm: EvalFile | null;
  final: EvalFile | null;
  bfcl: { baseline: BfclFile | null; warm: BfclFile | null; final: BfclFile | null };
  checkpoints: CheckpointHistory & { metrics: Record<number, number | null> };
  savePeriod: number | null;
  metricName: string;
  configYaml: string | null;
  criteria: CriteriaResult;
}

/** A JSON file (an evaluation, a summary), or null when it is missing or unreadable; promotion reads evaluations with it too. */
export function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

export function readMetrics(path: string): MetricRecord[] {
  if (!existsSync(path)) return [];
  const out: MetricRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const r = parseMetricsJsonLine(line);
    if (r) out.push(r);
  }
  return out;
}

/**
 * Steps the trainer saved a checkpoint at: the built-in trainer's checkpoint_saved events; NeMo RL
 * (no events) prints "Saving checkpoint for step N" on its stdout.
 */
export function savedSteps(logDir: string): number[] {
  const saved = new Set<number>(readTrainerEvents(logDir).filter((e) => e.event === 'checkpoint_saved').map((e) => e.step));
  const log = join(logDir, 'trainer.log');
  if (!saved.size && existsSync(log)) for (const m of readFileSync(log, 'utf8').matchAll(/Saving checkpoint for step (\d+)/g)) saved.add(Number(m[1]));
  return [...saved].sort((a, b) => a - b);
}

function checkpointsOnDisk(dir: string, metricName: string): Record<number, number | null> {
  return Object.fromEntries(listCheckpoints(dir, metricName).complete.map((c) => [c.step, c.metric]));
}

export function collectReportData(runDir: string, opts: { now?: Date } = {}): ReportData {
  const summary = readJson<SummaryFile>(join(runDir, 'summary.json'));
  const configYaml = existsSync(join(runDir, 'config.resolved.yaml')) ? readFileSync(join(runDir, 'config.resolved.yaml'), 'utf8') : null;
  // The resolved config as written by the validate stage (only the checkpointing section is read).
  let config: { trainer?: { checkpointing?: { enabled?: boolean; metric_name?: string; save_period?: number } } } | null;
  try {
    config = configYaml ? (parseYaml(configYaml) as typeof config) : null;
  } catch {
    config = null;
  }
  const ck = config?.trainer?.checkpointing ?? {};
  const metricName: string = summary?.metricName ?? ck.metric_name ?? 'val:accuracy';
  const savePeriod: number | null = ck.enabled === false ? null : typeof ck.save_period === 'number' ? ck.save_period : null;
  const records = readMetrics(join(runDir, 'logs', 'metrics.jsonl'));
  const onDisk = checkpointsOnDisk(join(runDir, 'checkpoints'), metricName);
  const retained = (summary?.checkpoints?.length ? summary.checkpoints.map((c) => c.step) : Object.keys(onDisk).map(Number)).sort((a, b) => a - b);
  const saved = [...new Set([...savedSteps(join(runDir, 'logs')), ...retained, ...Object.keys(onDisk).map(Number)])].sort((a, b) => a - b);
  const metrics: Record<number, number | null> = { ...onDisk };
  for (const c of summary?.checkpoints ?? []) metrics[c.step] = c.metric;
  const checkpoints = { saved, retained, best: summary?.best?.step ?? null, metrics };
  const baseline = readJson<EvalFile>(join(runDir, 'eval', 'baseline.json'));
  const warm = readJson<EvalFile>(join(runDir, 'eval', 'warm.json'));
  const final = readJson<EvalFile>(join(runDir, 'eval', 'final.json'));
  const bfcl = {
    baseline: readJson<BfclFile>(join(runDir, 'bfcl', 'baseline', 'bfcl.json')),
    warm: readJson<BfclFile>(join(runDir, 'bfcl', 'warm', 'bfcl.json')),
    final: readJson<BfclFile>(join(runDir, 'bfcl', 'final', 'bfcl.json')),
  };
  const runId = summary?.runId ?? runDir.split('/').filter(Boolean).at(-1) ?? 'run';
  const summaryLike: SummaryLike = summary ?? { state: 'unknown', steps: { completed: Math.max(0, ...records.map((r) => r.step)), total: 0 } };
  const criteria = evaluateCriteria({ summary: summaryLike, records, checkpoints, savePeriod, baseline, final, warm });
  return {
    runId,
    runDir,
    generatedAt: (opts.now ?? new Date()).toISOString(),
    summary,
    records,
    baseline,
    warm,
    final,
    bfcl,
    checkpoints,
    savePeriod,
    metricName,
    configYaml,
    criteria,
  };
}

export interface EvaluationPoint {
  label: string;
  accuracy: number;
  interval: [number, number] | null;
  numTasks: number | null;
  perCategory: Record<string, number>;
}

/** Base model, after the warm start (when there was one), after GRPO: what the report compares. */
export function evaluationPoints(d: Pick<ReportData, 'baseline' | 'warm' | 'final' | 'criteria'>): EvaluationPoint[] {
  const w = d.criteria.workplace;
  const rows: [string, EvalFile | null, [number, number] | null][] = [
    ['base model', d.baseline, w.intervals.baseline],
    ['after warm start', d.warm, w.intervals.warm],
    ['after GRPO (best checkpoint)', d.final, w.intervals.final],
  ];
  return rows
    .filter((r): r is [string, EvalFile, [number, number] | null] => r[1] !== null)
    .map(([label, e, interval]) => ({ label, accuracy: e.accuracy, interval, numTasks: e.num_tasks ?? null, perCategory: e.per_category ?? {} }));
}

/** Input of the Python plotter (`python -m grpo_trainer report --data ...`). */
export function plotInput(d: ReportData): Record<string, unknown> {
  const trainByStep = new Map<number, number>();
  const valByStep = new Map<number, number>();
  for (const r of d.records) {
    if (r.kind === 'train' && typeof r.metrics['train/reward'] === 'number') trainByStep.set(r.step, r.metrics['train/reward']!);
    if (r.kind === 'validation' && typeof r.metrics['validation/accuracy'] === 'number') valByStep.set(r.step, r.metrics['validation/accuracy']!);
  }
  const finalStep = d.summary?.best?.step ?? (d.checkpoints.best ?? null);
  return {
    runId: d.runId,
    train: [...trainByStep.entries()].sort((a, b) => a[0] - b[0]).map(([step, reward]) => ({ step, reward })),
    validation: [...valByStep.entries()].sort((a, b) => a[0] - b[0]).map(([step, accuracy]) => ({ step, accuracy })),
    baseline: d.baseline ? { accuracy: d.baseline.accuracy } : null,
    final: d.final && finalStep !== null ? { accuracy: d.final.accuracy, step: finalStep } : null,
    // The evaluation points with their 95% intervals (stats.ts owns the interval; the plotter draws it).
    points: evaluationPoints(d),
    checkpoints: { saved: d.checkpoints.saved, retained: d.checkpoints.retained, best: d.checkpoints.best },
    metricName: d.metricName,
  };
}
