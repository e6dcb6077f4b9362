/**
 * Activity `writeReport`: the run report, <runDir>/report/{report.md, report.html}, for every run
 * (completed, failed or cancelled). It collects the run's files (src/report/data.ts), evaluates
 * the seed's success criteria (src/report/criteria.ts), draws the plots with matplotlib in the
 * trainer environment (`python -m grpo_trainer report`), writes report.md next to the PNGs and a
 * self-contained report.html (PNGs as data URIs), and adds the criteria to summary.json and
 * summary.txt. Idempotent: a rerun rewrites the same files. The summary stage and `grpo report <runId>`
 * both call it.
 */
import { runCommand } from '../common/exec.js';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { trainerCommand } from '../common/trainer-command.js';
import type { EnvInfo } from '../common/types.js';
import { redact } from '../common/redact.js';
import { renderCriteriaText, type CriteriaResult } from './criteria.js';
import { collectReportData, plotInput } from './data.js';
import { renderHtml, renderMarkdown, type PlotImage } from './render.js';
import { heartbeat, log } from '../common/activity-context.js';

export interface ReportResult {
  dir: string;
  md: string;
  html: string;
  plots: number;
  /** Why plots are missing, if they are. */
  plotError: string | null;
  criteria: CriteriaResult;
}

const CRITERIA_HEADER = 'Success criteria (seed):';
const REPORT_HEADER = 'Report: ';

/** Python with matplotlib: the run's trainer env, else the state dir's builtin env, else $GRPO_REPORT_PYTHON. */
export function reportPython(stateDir: string, env?: EnvInfo | null): string | null {
  const candidates = [process.env.GRPO_REPORT_PYTHON, env?.python, join(stateDir, 'envs', 'builtin', 'bin', 'python')];
  return candidates.find((p): p is string => !!p && existsSync(p)) ?? null;
}

async function drawPlots(python: string | null, dataFile: string, outDir: string): Promise<{ plots: PlotImage[]; error: string | null }> {
  if (!python) return { plots: [], error: 'no Python environment with matplotlib found (build the trainer environment, or set GRPO_REPORT_PYTHON)' };
  const cmd = trainerCommand(python, ['report', '--data', dataFile, '--out-dir', outDir], { offline: false });
  const env: NodeJS.ProcessEnv = { ...process.env, ...cmd.env, MPLBACKEND: 'Agg', MPLCONFIGDIR: join(outDir, '.matplotlib') };
  delete env.VIRTUAL_ENV;
  const tick = setInterval(() => heartbeat({ stage: 'summary', step: 'report plots' }), 1000);
  let r: { code: number; output: string };
  try {
    r = await runCommand(cmd.argv, { env, timeoutMs: 180_000 });
  } finally {
    clearInterval(tick);
  }
  await writeFile(join(outDir, 'plots.log'), redact(r.output));
  if (r.code !== 0 || !existsSync(join(outDir, 'plots.json'))) return { plots: [], error: `plotting failed (exit ${r.code}): ${redact(r.output).slice(-600)}` };
  const meta = JSON.parse(await readFile(join(outDir, 'plots.json'), 'utf8')) as { plots: PlotImage[] };
  const plots: PlotImage[] = [];
  for (const p of meta.plots) {
    const file = join(outDir, p.file);
    if (existsSync(file)) plots.push({ ...p, base64: (await readFile(file)).toString('base64') });
  }
  return { plots, error: null };
}

/** Replace (or add) the report's sections at the end of summary.txt. */
export function withReportSection(summaryText: string, criteria: CriteriaResult, htmlPath: string): string {
  const lines = summaryText.replace(/\s+$/, '').split('\n');
  const cut = lines.findIndex((l) => l.startsWith(CRITERIA_HEADER) || l.startsWith(REPORT_HEADER));
  const kept = cut >= 0 ? lines.slice(0, cut) : lines;
  return `${kept.join('\n')}\n${renderCriteriaText(criteria)}${REPORT_HEADER}${htmlPath}\n`;
}

/** Write the report of the run in `runDir` (no activity context needed). */
export async function writeReportForDir(runDir: string, opts: { python?: string | null; stateDir?: string } = {}): Promise<ReportResult> {
  const dir = join(runDir, 'report');
  await mkdir(dir, { recursive: true });
  const data = collectReportData(runDir);
  const dataFile = join(dir, 'report-data.json');
  await writeFile(dataFile, JSON.stringify(plotInput(data), null, 2));
  await writeFile(join(dir, 'criteria.json'), JSON.stringify(data.criteria, null, 2) + '\n');
  const python = opts.python !== undefined ? opts.python : reportPython(opts.stateDir ?? join(runDir, '..', '..'));
  const { plots, error } = await drawPlots(python, dataFile, dir);
  if (error) log('warn', 'report plots missing', { error });
  const md = join(dir, 'report.md');
  const html = join(dir, 'report.html');
  await writeFile(md, renderMarkdown(data, plots));
  await writeFile(html, renderHtml(data, plots));
  // The summary states whether the criteria hold, and where the report is.
  const summaryJson = join(runDir, 'summary.json');
  if (existsSync(summaryJson)) {
    const s = JSON.parse(await readFile(summaryJson, 'utf8')) as Record<string, unknown>;
    s.criteria = { allHold: data.criteria.allHold, items: data.criteria.criteria };
    s.report = { md, html };
    await writeFile(summaryJson, redact(JSON.stringify(s, null, 2)) + '\n');
  }
  const summaryText = join(runDir, 'summary.txt');
  if (existsSync(summaryText)) await writeFile(summaryText, withReportSection(await readFile(summaryText, 'utf8'), data.criteria, html));
  return { dir, md, html, plots: plots.length, plotError: error, criteria: data.criteria };
}
