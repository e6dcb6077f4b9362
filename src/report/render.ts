/**
 * report.md and report.html from ReportData and the plot PNGs. The HTML is self-contained: inline
 * CSS, plots as base64 `data:image/png` URIs, no scripts, no external references.
 */
import { redact } from '../common/redact.js';
import { criteriaVerdict, describeAccuracies, describeChange, type Criterion } from './criteria.js';
import { formatInterval } from './stats.js';
import type { BfclFile, LedgerLike, ReportData } from './data.js';

export interface PlotImage {
  id: string;
  file: string;
  title: string;
  caption: string;
  /** PNG bytes as base64 (HTML only). */
  base64?: string;
}

const fmt = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const signed = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(d)}`);
const secs = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v >= 90 ? `${(v / 60).toFixed(1)} min` : `${v.toFixed(1)} s`);

/** A document as a list of blocks, rendered to either format. */
type Block =
  | { kind: 'h'; level: 1 | 2 | 3; text: string }
  | { kind: 'p'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; head: string[]; rows: string[][]; id?: string }
  | { kind: 'plot'; plot: PlotImage }
  | { kind: 'pre'; text: string }
  | { kind: 'criteria'; items: Criterion[] };

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

type BfclPoint = [label: string, file: BfclFile | null];

function bfclBlocks(points: BfclPoint[]): Block[] {
  const present = points.filter((p): p is [string, BfclFile] => p[1] !== null);
  if (!present.length) return [{ kind: 'p', text: 'BFCL was not run for this run (bfcl.enabled is false, or its stage did not complete).' }];
  const ref = present.at(-1)![1];
  const first = present[0]![1];
  const cats = [...new Set(present.flatMap(([, f]) => Object.keys(f.categories)))];
  const cell = (x: BfclFile, c: string) => {
    const v = x.categories[c];
    return v ? `${fmt(v.accuracy)} (${v.correct}/${v.total})` : 'n/a';
  };
  const diff = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && present.length > 1 ? signed(b - a) : 'n/a');
  const rows = cats.map((c) => [c, ...present.map(([, f]) => cell(f, c)), diff(first.categories[c]?.accuracy, ref.categories[c]?.accuracy)]);
  rows.push(['overall (mean of categories)', ...present.map(([, f]) => `${fmt(f.overall.accuracy)} (${f.overall.correct}/${f.overall.total})`), diff(first.overall.accuracy, ref.overall.accuracy)]);
  const s = (ref.settings ?? {}) as Record<string, unknown>;
  const sameIds = present.length > 1 && cats.every((c) => present.every(([, f]) => JSON.stringify(f.categories[c]?.ids ?? []) === JSON.stringify(first.categories[c]?.ids ?? [])));
  return [
    {
      kind: 'p',
      text:
        `Scored by ${ref.package} ${ref.version} (${ref.data_version} data) with its own checkers on its own data. ` +
        `Categories: ${cats.join(', ')}; entries per category: ${cats.map((c) => `${c} ${ref.categories[c]?.total ?? '?'}`).join(', ')} ` +
        `(evenly spaced over each category). Mode: ${ref.mode ?? 'prompt'}; temperature ${String(s.temperature ?? 'n/a')}` +
        `${s.greedy ? ' (greedy)' : ''}, at most ${String(s.max_tokens ?? 'n/a')} new tokens per model call, prefilled tool-call opener ${s.prefill_tool_call ? 'on' : 'off'}.` +
        (present.length > 1 ? (sameIds ? ' Every point ran on the same entries.' : ' Note: the points ran on different entries.') : ''),
    },
    { kind: 'table', id: 'bfcl', head: ['BFCL category', ...present.map(([label]) => label), 'difference'], rows },
  ];
}

function ledgerBlocks(ledger: LedgerLike[] | undefined, failures: NonNullable<ReportData['summary']>['failures']): Block[] {
  const out: Block[] = [];
  if (ledger === undefined) out.push({ kind: 'p', text: 'This summary has no ledger (written before the ledger existed).' });
  else if (!ledger.length) out.push({ kind: 'p', text: 'No failures: nothing to recover from.' });
  else
    out.push({
      kind: 'table',
      id: 'ledger',
      head: ['time', 'stage', 'type', 'action', 'steps lost', 'time lost', 'recovery', 'detail'],
      rows: ledger.map((e) => [
        e.time ?? '',
        e.stage ?? '',
        e.type,
        e.action,
        e.stepsLost === null || e.stepsLost === undefined ? 'n/a' : String(e.stepsLost),
        secs(e.timeLostSeconds),
        secs(e.recoverySeconds),
        (e.detail ?? e.message ?? '').split('\n')[0]!.slice(0, 200),
      ]),
    });
  if (failures?.length)
    out.push({
      kind: 'list',
      items: failures.map((f) => `${f.time ?? ''} [${f.stage} attempt ${f.attempt ?? '?'}] ${f.type}: ${f.message.split('\n')[0]!.slice(0, 240)}`),
    });
  return out;
}

export function buildBlocks(d: ReportData, plots: PlotImage[]): Block[] {
  const s = d.summary;
  const w = d.criteria.workplace;
  const accuracies = describeAccuracies(w);
  const blocks: Block[] = [];
  blocks.push({ kind: 'h', level: 1, text: `GRPO run report: ${d.runId}` });
  blocks.push({
    kind: 'list',
    items: [
      `State: ${s?.state ?? 'unknown (no summary.json)'}; backend ${s?.backend ?? 'n/a'}; config ${s?.configSource ?? 'n/a'}`,
      `Steps: ${s?.steps.completed ?? 'n/a'}/${s?.steps.total ?? 'n/a'}; wall time ${secs(s?.elapsedSeconds)} (${s?.startedAt ?? '?'} to ${s?.finishedAt ?? '?'})`,
      `Workplace validation accuracy (95% CI): ${accuracies.accuracies}${s?.finalModel ? `; final evaluated ${s.finalModel}` : ''}`,
      ...(accuracies.grpoOverWarm ? [accuracies.grpoOverWarm] : []),
      `BFCL (mean of categories): baseline ${fmt(d.bfcl.baseline?.overall.accuracy)}${d.bfcl.warm ? ` → warm start ${fmt(d.bfcl.warm.overall.accuracy)}` : ''} → final ${fmt(d.bfcl.final?.overall.accuracy)}${d.bfcl.final || d.bfcl.baseline ? ` (${(d.bfcl.final ?? d.bfcl.baseline)!.package} ${(d.bfcl.final ?? d.bfcl.baseline)!.version})` : ''}`,
      `Run directory: ${d.runDir}; report generated ${d.generatedAt}`,
    ],
  });
  blocks.push({ kind: 'h', level: 2, text: 'Success criteria' });
  blocks.push({ kind: 'criteria', items: d.criteria.criteria });
  blocks.push({ kind: 'h', level: 2, text: 'Plots' });
  for (const p of plots) blocks.push({ kind: 'plot', plot: p });
  if (!plots.length) blocks.push({ kind: 'p', text: 'Plots are missing: the plotting step did not run (see report/plots.log).' });

  const warmCol = w.warm !== null;
  blocks.push({ kind: 'h', level: 2, text: `Workplace validation accuracy: baseline${warmCol ? ', warm start' : ''} and final` });
  blocks.push({
    kind: 'p',
    text:
      `NeMo Gym's binary outcome reward (1 when the five databases after the model's calls equal those after the ground truth). Baseline: the base model; ${warmCol ? 'warm start: after the supervised warm start, before GRPO; ' : ''}final: the best checkpoint by ${d.metricName}. ` +
      `Tasks: ${w.numTasks.baseline ?? 'n/a'} (baseline)${warmCol ? `, ${w.numTasks.warm ?? 'n/a'} (warm start)` : ''}, ${w.numTasks.final ?? 'n/a'} (final)${w.sameTasks === true ? ', the same tasks at every point' : w.sameTasks === false ? '; WARNING: the points scored different tasks' : ''}. ` +
      `Intervals: Wilson 95% for each accuracy; the change is paired by task.`,
  });
  const ci = (v: number | null, i: [number, number] | null) => (v === null ? 'n/a' : `${fmt(v)} ${formatInterval(i)}`);
  blocks.push({
    kind: 'table',
    id: 'workplace',
    head: ['category', 'baseline', ...(warmCol ? ['warm start'] : []), 'final', 'difference'],
    rows: [
      ...w.perCategory.map((r) => [r.category, fmt(r.baseline), ...(warmCol ? [fmt(r.warm)] : []), fmt(r.final), signed(r.delta)]),
      ['overall', ci(w.baseline, w.intervals.baseline), ...(warmCol ? [ci(w.warm, w.intervals.warm)] : []), ci(w.final, w.intervals.final), describeChange(w.change)],
    ],
  });
  blocks.push({ kind: 'h', level: 2, text: d.bfcl.warm ? 'BFCL v3: baseline, warm start and final' : 'BFCL v3: baseline vs. final' });
  blocks.push(
    ...bfclBlocks([
      ['baseline (base model)', d.bfcl.baseline],
      ...(d.bfcl.warm ? [['warm start', d.bfcl.warm] as BfclPoint] : []),
      ['final (best checkpoint)', d.bfcl.final],
    ]),
  );

  blocks.push({ kind: 'h', level: 2, text: 'Checkpoints' });
  const retained = new Set(d.checkpoints.retained);
  blocks.push({
    kind: 'table',
    id: 'checkpoints',
    head: ['step', d.metricName, 'kept', 'note'],
    rows: d.checkpoints.saved.map((step) => [
      `step_${step}`,
      fmt(d.checkpoints.metrics[step] ?? null),
      retained.has(step) ? 'retained' : 'removed by retention',
      step === d.checkpoints.best ? 'best' : '',
    ]),
  });

  blocks.push({ kind: 'h', level: 2, text: 'Failures and recovery' });
  blocks.push(...ledgerBlocks(s?.ledger, s?.failures));
  if (s?.configChanges?.length) blocks.push({ kind: 'p', text: `Config changes made by recovery: ${s.configChanges.join(', ')}` });

  blocks.push({ kind: 'h', level: 2, text: 'Timings' });
  const stepTimes = d.records.filter((r) => r.kind === 'train').map((r) => r.metrics['timing/train/total_step_time']).filter((v): v is number => typeof v === 'number');
  const valTimes = d.records.filter((r) => r.kind === 'validation').map((r) => r.metrics['timing/validation/total_validation_time']).filter((v): v is number => typeof v === 'number');
  const genTps = d.records.filter((r) => r.kind === 'train').map((r) => r.metrics['performance/generation_tokens_per_sec']).filter((v): v is number => typeof v === 'number');
  const timing: string[][] = [
    ['run wall time', secs(s?.elapsedSeconds)],
    ['training steps logged', String(stepTimes.length)],
    ['step time mean / median', stepTimes.length ? `${secs(stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length)} / ${secs(median(stepTimes))}` : 'n/a'],
    ['in-training validation, total', valTimes.length ? `${secs(valTimes.reduce((a, b) => a + b, 0))} over ${valTimes.length} validation(s)` : 'n/a'],
    ['rollout generation tokens/s (median)', genTps.length ? fmt(median(genTps), 1) : 'n/a'],
  ];
  for (const [label, b] of [['baseline', d.bfcl.baseline], ['warm start', d.bfcl.warm], ['final', d.bfcl.final]] as const)
    if (b?.timings) timing.push([`BFCL ${label}: total (generation, scoring)`, `${secs(b.timings.total_s)} (${secs(b.timings.generate_s)}, ${secs(b.timings.evaluate_s)})`]);
  blocks.push({ kind: 'table', id: 'timings', head: ['what', 'time'], rows: timing });

  if (s?.warnings?.length) {
    blocks.push({ kind: 'h', level: 2, text: 'Warnings' });
    blocks.push({ kind: 'list', items: s.warnings });
  }
  blocks.push({ kind: 'h', level: 2, text: 'Config used' });
  blocks.push({ kind: 'pre', text: d.configYaml ? redact(d.configYaml) : '(config.resolved.yaml not found)' });
  return blocks;
}

// ---------------------------------------------------------------------------------------------
// Markdown

const mdCell = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(d: ReportData, plots: PlotImage[]): string {
  const out: string[] = [];
  for (const b of buildBlocks(d, plots)) {
    switch (b.kind) {
      case 'h':
        out.push(`${'#'.repeat(b.level)} ${b.text}`, '');
        break;
      case 'p':
        out.push(b.text, '');
        break;
      case 'list':
        out.push(...b.items.map((i) => `- ${i}`), '');
        break;
      case 'table':
        out.push(`| ${b.head.map(mdCell).join(' | ')} |`, `|${b.head.map(() => '---').join('|')}|`, ...b.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`), '');
        if (!b.rows.length) out.push('(none)', '');
        break;
      case 'plot':
        out.push(`![${b.plot.title}](${b.plot.file})`, '', `*${b.plot.caption}*`, '');
        break;
      case 'pre':
        out.push('```yaml', b.text.trimEnd(), '```', '');
        break;
      case 'criteria':
        out.push(`Overall: **${criteriaVerdict(b.items)}**`, '');
        out.push(...b.items.map((c) => `- **${c.status.toUpperCase()}** ${c.title}: ${c.detail}`), '');
        break;
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// HTML

export function escapeHtml(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#ffffff;color:#1d1d1f;}
main{max-width:960px;margin:0 auto;padding:24px 28px 48px;}
h1{font-size:24px;margin:8px 0 12px;} h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px;}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px;} th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top;}
th{background:#f3f3f3;} td:not(:first-child){font-variant-numeric:tabular-nums;}
figure{margin:10px 0 18px;} figure img{display:block;width:800px;max-width:100%;height:auto;border:1px solid #ddd;}
figcaption{font-size:12px;color:#555;margin-top:4px;max-width:800px;}
pre{background:#f6f6f6;border:1px solid #e0e0e0;padding:10px;font-size:12px;overflow:auto;max-height:480px;}
.crit{list-style:none;padding:0;} .crit li{margin:4px 0;} .badge{display:inline-block;min-width:38px;text-align:center;font-weight:600;font-size:12px;padding:1px 6px;border-radius:3px;margin-right:6px;}
.pass{background:#e3f4e6;color:#1b6b2a;} .fail{background:#fbe4e4;color:#a11d1d;} .na{background:#eee;color:#555;}
`;

export function renderHtml(d: ReportData, plots: PlotImage[]): string {
  const body: string[] = [];
  for (const b of buildBlocks(d, plots)) {
    switch (b.kind) {
      case 'h':
        body.push(`<h${b.level}>${escapeHtml(b.text)}</h${b.level}>`);
        break;
      case 'p':
        body.push(`<p>${escapeHtml(b.text)}</p>`);
        break;
      case 'list':
        body.push(`<ul>${b.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`);
        break;
      case 'table':
        body.push(
          `<table${b.id ? ` id="${b.id}"` : ''}><thead><tr>${b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>` +
            (b.rows.length ? b.rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('') : `<tr><td colspan="${b.head.length}">(none)</td></tr>`) +
            `</tbody></table>`,
        );
        break;
      case 'plot':
        body.push(
          `<figure id="plot-${b.plot.id}">` +
            (b.plot.base64 ? `<img alt="${escapeHtml(b.plot.title)}" src="data:image/png;base64,${b.plot.base64}">` : `<p>(${escapeHtml(b.plot.file)} missing)</p>`) +
            `<figcaption>${escapeHtml(b.plot.caption)}</figcaption></figure>`,
        );
        break;
      case 'pre':
        body.push(`<pre>${escapeHtml(b.text)}</pre>`);
        break;
      case 'criteria':
        body.push(`<p><strong>Overall: ${escapeHtml(criteriaVerdict(b.items))}</strong></p>`);
        body.push(
          `<ul class="crit" id="criteria">${b.items
            .map((c) => `<li><span class="badge ${c.status === 'n/a' ? 'na' : c.status}">${c.status.toUpperCase()}</span><strong>${escapeHtml(c.title)}</strong>: ${escapeHtml(c.detail)}</li>`)
            .join('')}</ul>`,
        );
        break;
    }
  }
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>GRPO run report: ${escapeHtml(d.runId)}</title><style>${CSS}</style></head>\n<body><main>\n${body.join('\n')}\n</main></body></html>\n`;
}
