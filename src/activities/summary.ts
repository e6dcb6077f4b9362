/** The summary stage: summary.json and summary.txt, then the run report (src/report/write.ts). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getBackend } from '../backends/index.js';
import { redact } from '../common/redact.js';
import type { EnvInfo, ResolvedRun, Summary } from '../common/types.js';
import { reportPython, writeReportForDir, type ReportResult } from '../report/write.js';
import { renderSummaryText } from '../summary/text.js';

export async function writeSummary(input: { summary: Summary }): Promise<{ json: string; text: string }> {
  const s = input.summary;
  const json = join(s.runDir, 'summary.json');
  const text = join(s.runDir, 'summary.txt');
  await mkdir(s.runDir, { recursive: true });
  await writeFile(json, redact(JSON.stringify(s, null, 2)) + '\n');
  await writeFile(text, redact(renderSummaryText(s)));
  return { json, text };
}

/** The run report, after the summary (report.md, a self-contained report.html, the criteria in the summary files). */
export async function writeReport(input: { run: ResolvedRun; env?: EnvInfo | null }): Promise<ReportResult> {
  const { run } = input;
  // Plots need matplotlib: the run's own environment only when it is the built-in trainer's.
  const python = reportPython(run.paths.stateDir, getBackend(run.config.backend).runsTrainerTools ? input.env : null);
  return writeReportForDir(run.paths.runDir, { python, stateDir: run.paths.stateDir });
}
