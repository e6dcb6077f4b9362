/** Rendering of run status: progress bar, live reward/accuracy, readable status. */
import type { RunStatus } from '../common/types.js';
import { formatDuration, renderLedger } from '../summary/text.js';

function n(v: number | undefined, d = 3): string {
  return v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d);
}

export function pickReward(m: Record<string, number>): number | undefined {
  return m['train/reward'] ?? m['train/reward_mean'] ?? m['train/total_reward/mean'];
}
export function pickAccuracy(s: RunStatus): number | undefined {
  return s.latestValidation['validation/accuracy'] ?? s.final?.accuracy ?? s.baseline?.accuracy;
}

export function progressLine(s: RunStatus, width = 24): string {
  const total = Math.max(1, s.totalSteps);
  const filled = Math.min(width, Math.round((s.step / total) * width));
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const att = s.attempts[s.stage];
  return `[${bar}] step ${s.step}/${s.totalSteps}  reward ${n(pickReward(s.latestTrain))}  val acc ${n(pickAccuracy(s))}  stage ${s.stage}${att && att > 1 ? ` (attempt ${att})` : ''}  ${formatDuration(s.elapsedSeconds)}`;
}

export function renderStatus(s: RunStatus, closed?: string): string {
  const lines: string[] = [];
  lines.push(`Run ${s.runId}: ${s.state}${closed ? ` (workflow ${closed})` : ''}, stage ${s.stage}, backend ${s.backend}, elapsed ${formatDuration(s.elapsedSeconds)}`);
  lines.push(progressLine(s));
  for (const st of s.stages) lines.push(`  ${st.state.padEnd(9)} ${st.name}${st.detail ? `: ${st.detail.split('\n')[0]}` : ''}`);
  if (s.baseline) lines.push(`Baseline validation accuracy: ${n(s.baseline.accuracy)}`);
  if (s.final) lines.push(`Final validation accuracy: ${n(s.final.accuracy)} (${s.final.model})`);
  if (s.checkpoints.length) {
    lines.push(`Checkpoints (${s.metricName}):`);
    for (const c of s.checkpoints) lines.push(`  step_${c.step}  ${n(c.metric ?? undefined)}${s.best?.step === c.step ? '  best' : ''}`);
  }
  const att = Object.entries(s.attempts).filter(([, v]) => (v ?? 0) > 1);
  if (att.length) lines.push(`Attempts: ${att.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  lines.push(...renderLedger(s.ledger ?? []));
  if (s.configChanges?.length) lines.push(`Config changed by recovery: ${s.configChanges.join(', ')}`);
  for (const f of s.failures) lines.push(`Failure [${f.stage} attempt ${f.attempt}] ${f.type}: ${f.message.split('\n')[0]}`);
  for (const w of s.warnings) lines.push(`Warning: ${w}`);
  if (s.runDir) lines.push(`Run dir: ${s.runDir}`);
  if (s.summaryPath) lines.push(`Summary: ${s.summaryPath}`);
  return lines.join('\n');
}
