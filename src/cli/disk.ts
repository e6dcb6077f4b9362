/**
 * What a run left in its directory, for `grpo status` and `grpo list` when no worker or no server
 * answers: summary.json when the run wrote one, else its resolved config, checkpoints and metrics.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { parseMetricsJsonLine } from '../backends/metrics.js';
import { listCheckpoints } from '../checkpoints/reader.js';
import { runPaths } from '../common/state.js';
import type { CheckpointInfo, Metrics, Summary } from '../common/types.js';
import { renderSummaryText } from '../summary/text.js';
import { pickReward } from './follow.js';

export interface DiskRun {
  runId: string;
  runDir: string;
  /** summary.json, written when the run ended (completed, failed or cancelled). */
  summary: Summary | null;
  backend: string | null;
  /** The config file name without .yaml (as the GrpoConfig search attribute), when the summary says. */
  config: string | null;
  metricName: string | null;
  checkpoints: CheckpointInfo[];
  best: CheckpointInfo | null;
  step: number | null;
  totalSteps: number | null;
  latestTrain: Metrics;
  latestValidation: Metrics;
  /** When anything in the run dir last changed (its logs, for a run without a summary). */
  modifiedAt: string;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

export function readRunFromDisk(state: string, runId: string): DiskRun | null {
  const paths = runPaths(state, runId);
  if (!existsSync(paths.runDir) || !statSync(paths.runDir).isDirectory()) return null;
  const summary = readJson<Summary>(paths.summaryJson);
  let resolved: { backend?: string; trainer?: { checkpointing?: { metric_name?: string; higher_is_better?: boolean }; grpo?: { max_num_steps?: number } } } = {};
  try {
    resolved = (parse(readFileSync(join(paths.runDir, 'config.resolved.yaml'), 'utf8')) as typeof resolved) ?? {};
  } catch {
    /* not written yet */
  }
  const metricName = summary?.metricName ?? resolved.trainer?.checkpointing?.metric_name ?? null;
  let latestTrain: Metrics = summary?.latestTrain ?? {};
  let latestValidation: Metrics = summary?.latestValidation ?? {};
  let step: number | null = summary?.steps.completed ?? null;
  const metricsFile = join(paths.logDir, 'metrics.jsonl');
  if (!summary && existsSync(metricsFile))
    for (const line of readFileSync(metricsFile, 'utf8').split('\n')) {
      const r = parseMetricsJsonLine(line);
      if (r?.kind === 'train') [latestTrain, step] = [r.metrics, Math.max(step ?? 0, r.step)];
      else if (r?.kind === 'validation') latestValidation = r.metrics;
    }
  const checkpoints = summary?.checkpoints ?? (metricName ? listCheckpoints(paths.checkpointDir, metricName).complete : []);
  const sign = resolved.trainer?.checkpointing?.higher_is_better === false ? -1 : 1;
  const scored = checkpoints.filter((c) => c.metric !== null);
  const best = summary ? summary.best : scored.length ? scored.reduce((a, c) => (sign * c.metric! >= sign * a.metric! ? c : a)) : null;
  const source = summary?.configSource;
  const modified = Math.max(mtime(paths.runDir), mtime(paths.logDir), mtime(metricsFile), mtime(paths.summaryJson));
  return {
    runId,
    runDir: paths.runDir,
    summary,
    backend: summary?.backend ?? resolved.backend ?? null,
    config: source && source.endsWith('.yaml') ? basename(source, '.yaml') : null,
    metricName,
    checkpoints,
    best,
    step,
    totalSteps: summary?.steps.total ?? resolved.trainer?.grpo?.max_num_steps ?? null,
    latestTrain,
    latestValidation,
    modifiedAt: new Date(modified).toISOString(),
  };
}

/** Every run directory under <state>/runs, newest first. */
export function listRunsOnDisk(state: string): DiskRun[] {
  let names: string[];
  try {
    names = readdirSync(join(state, 'runs'));
  } catch {
    return [];
  }
  return names
    .filter((n) => !n.startsWith('_') && !n.startsWith('.'))
    .map((n) => readRunFromDisk(state, n))
    .filter((r): r is DiskRun => r !== null)
    .sort((a, b) => b.modifiedAt.localeCompare(a.modifiedAt));
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(3));

/** The run as its files tell it: the summary text, or what the checkpoints and metrics say so far. */
export function renderDiskRun(r: DiskRun): string {
  if (r.summary) return renderSummaryText(r.summary).trimEnd();
  const lines = [
    `Run ${r.runId}: no summary.json yet (the run is still open, or stopped before writing one); backend ${r.backend ?? 'unknown'}, last change ${r.modifiedAt}`,
    `Steps: ${r.step ?? 0}/${r.totalSteps ?? '?'}  reward ${fmt(pickReward(r.latestTrain))}  val acc ${fmt(r.latestValidation['validation/accuracy'])}`,
  ];
  if (r.checkpoints.length) {
    lines.push(`Checkpoints (${r.metricName}):`);
    for (const c of r.checkpoints) lines.push(`  step_${c.step}  ${fmt(c.metric)}${r.best?.step === c.step ? '  best' : ''}`);
  } else lines.push('Checkpoints: none complete yet');
  lines.push(`Run dir: ${r.runDir}`);
  return lines.join('\n');
}
