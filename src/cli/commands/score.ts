/** `grpo score`: a trainer run's metrics and evaluations, made outside the pipeline, scored as a run summary scores them. */
import { existsSync, readFileSync } from 'node:fs';
import type { EvalFile } from '../../report/criteria.js';
import { readMetrics } from '../../report/data.js';
import { renderScoreText, scoreRun } from '../../report/score.js';
import { CliError } from '../client.js';
import { flag, JSON_OPTION, required, str, type Command } from '../command.js';
import { say } from '../output.js';

function readEval(path: string | undefined, option: string): EvalFile | null {
  if (path === undefined) return null;
  if (!existsSync(path)) throw new CliError(`--${option}: file not found: ${path}`, 2);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`--${option} ${path}: not JSON (${(e as Error).message})`, 2);
  }
  const accuracy = (parsed as { accuracy?: unknown } | null)?.accuracy;
  if (typeof accuracy !== 'number' || !Number.isFinite(accuracy))
    throw new CliError(`--${option} ${path}: "accuracy" must be a number; expected the JSON that python -m grpo_trainer evaluate --out writes`, 2);
  return parsed as EvalFile;
}

export const score: Command = {
  name: 'score',
  brief: 'score a bare trainer run: reward rising, accuracy vs baseline',
  args: '<metrics.jsonl> [--baseline FILE] [--warm FILE] [--final FILE] [--json]',
  summary: "Score a trainer run made outside the pipeline (python -m grpo_trainer train / evaluate) by the run summary's rules: the reward on revisited tasks rising, and validation accuracy above the baseline beyond the 95% interval.",
  details: [
    'The evaluations are the JSON files `python -m grpo_trainer evaluate --out` writes; with per-task results the changes are paired by task.',
    'Example: grpo score lg/metrics.jsonl --baseline eval-base.json --warm eval-warm.json --final eval-step_30.json',
  ],
  options: {
    baseline: { type: 'string', value: 'FILE', help: 'evaluation of the base model' },
    warm: { type: 'string', value: 'FILE', help: 'evaluation after the supervised warm start' },
    final: { type: 'string', value: 'FILE', help: 'evaluation of the trained checkpoint' },
    json: JSON_OPTION,
  },
  async run(p) {
    const metrics = required(this, p, 0, '<metrics.jsonl>');
    if (!existsSync(metrics)) throw new CliError(`file not found: ${metrics}`, 2);
    const records = readMetrics(metrics);
    if (!records.some((r) => r.kind === 'train'))
      throw new CliError(`${metrics}: no training records (lines with "kind": "train"); expected the metrics.jsonl in the trainer's logger.log_dir`, 2);
    const result = scoreRun({ records, baseline: readEval(str(p, 'baseline'), 'baseline'), warm: readEval(str(p, 'warm'), 'warm'), final: readEval(str(p, 'final'), 'final') });
    say(flag(p, 'json') ? JSON.stringify(result, null, 2) : renderScoreText(result).trimEnd());
    return 0;
  },
};
