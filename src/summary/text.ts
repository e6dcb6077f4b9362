import type { LedgerEntry, Summary } from '../common/types.js';
import { formatInterval, wilson } from '../report/stats.js';

function fmt(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits);
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
}

const opt = (v: number | null, unit = '') => (v === null ? 'n/a' : `${v}${unit}`);

/** The lost-work ledger as text lines (shared by `grpo status` and summary.txt). */
export function renderLedger(ledger: LedgerEntry[]): string[] {
  if (!ledger.length) return [];
  const recovered = ledger.filter((e) => !e.action.startsWith('gave up')).length;
  const steps = ledger.reduce((a, e) => a + (e.stepsLost ?? 0), 0);
  const lines = [`Recoveries: ${recovered}, steps lost in all: ${steps}`];
  for (const e of ledger)
    lines.push(
      `  ${e.time} ${e.stage} ${e.type} (${e.rule}): ${e.action}` +
        `${e.configChanges.length ? ` [${e.configChanges.join(', ')}]` : ''}; steps lost ${opt(e.stepsLost)}, time lost ${opt(e.timeLostSeconds, 's')}, recovery ${opt(e.recoverySeconds, 's')}${e.trainerStartSeconds !== null && e.trainerStartSeconds !== undefined ? ` (of which trainer start ${e.trainerStartSeconds}s)` : ''}`,
    );
  return lines;
}

/** Human-readable run summary (summary.txt). */
export function renderSummaryText(s: Summary): string {
  const lines: string[] = [];
  lines.push(`GRPO run ${s.runId}: ${s.state} after ${formatDuration(s.elapsedSeconds)} (backend ${s.backend}, config ${s.configSource})`);
  lines.push(`Steps: ${s.steps.completed}/${s.steps.total}`);
  const n = s.validationTasks;
  const point = (v: number | null | undefined, tasks: number | null | undefined) => `${fmt(v)}${v !== null && v !== undefined && tasks ? ` ${formatInterval(wilson(v, tasks))}` : ''}`;
  const warm = s.warmAccuracy !== null && s.warmAccuracy !== undefined ? ` -> warm start ${point(s.warmAccuracy, n?.warm)}` : '';
  lines.push(`Validation accuracy (95% CI${n?.final ?? n?.baseline ? `, ${n?.final ?? n?.baseline} tasks` : ''}): baseline ${point(s.baselineAccuracy, n?.baseline)}${warm} -> final ${point(s.finalAccuracy, n?.final)}${s.finalModel ? ` (final evaluated: ${s.finalModel})` : ''}`);
  const w = s.warmStart;
  if (w) lines.push(`Warm start: ${w.reused ? 'reused' : 'trained'} on ${w.traces} verified traces of ${w.tasks} training tasks, ${w.steps} steps in ${formatDuration(w.seconds)}${w.finalLoss !== null ? `, final loss ${fmt(w.finalLoss, 4)}` : ''} (${w.model.modelDir})`);
  const train = Object.entries(s.latestTrain)
    .filter(([k]) => /^train\/(reward|loss)$/.test(k))
    .map(([k, v]) => `${k}=${fmt(v, 4)}`);
  if (train.length) lines.push(`Latest training metrics: ${train.join(', ')}`);
  lines.push(`Retained checkpoints (top-k by ${s.metricName} plus the newest):`);
  if (!s.checkpoints.length) lines.push('  (none)');
  const newest = s.checkpoints.reduce((m, c) => Math.max(m, c.step), -1);
  for (const c of s.checkpoints) {
    const tags = [c.step === s.best?.step ? 'best' : '', c.step === newest ? 'newest' : ''].filter(Boolean).join(', ');
    lines.push(`  step_${c.step}  ${s.metricName}=${fmt(c.metric)}${tags ? `  (${tags})` : ''}  ${c.dir}`);
  }
  const p = s.promotion;
  if (p) lines.push(`Promotion (line ${p.line}): ${p.reason}${p.promoted && p.modelDir ? ` (now ${p.modelDir})` : ''}`);
  lines.push(...renderLedger(s.ledger ?? []));
  if (s.configChanges?.length) lines.push(`Config changed by recovery: ${s.configChanges.join(', ')}`);
  if (s.failures.length) {
    lines.push('Failures:');
    for (const f of s.failures) lines.push(`  [${f.stage} attempt ${f.attempt}] ${f.type}: ${f.message.split('\n')[0]}`);
  }
  for (const w of s.warnings) lines.push(`Warning: ${w}`);
  lines.push(`Results: ${s.runDir}`);
  return lines.join('\n') + '\n';
}
