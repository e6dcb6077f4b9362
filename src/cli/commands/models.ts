/**
 * `grpo models` and `grpo models rollback`: a promotion line's history and current model, and going
 * back one promoted model. Files only (src/promotion/registry.ts); no Temporal server needed.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../../common/state.js';
import { readCurrent, readHistory, RegistryError, rollback, LINE_PATTERN, type HistoryRecord, type PromotedPointer } from '../../promotion/registry.js';
import { formatInterval } from '../../report/stats.js';
import { CliError } from '../client.js';
import { flag, JSON_OPTION, str, type Command, type Parsed } from '../command.js';
import { say } from '../output.js';

const LINE_OPTION = { type: 'string' as const, value: 'L', help: 'the promotion line, as config promotion.line (default: "default")' };

function lineOf(p: Parsed): string {
  const line = str(p, 'line') ?? 'default';
  if (!LINE_PATTERN.test(line)) throw new CliError(`--line: expected a file name (letters, digits, '.', '_' or '-'), got ${JSON.stringify(line)}`, 2);
  return line;
}

/** Lines of the state dir: directories under models/ with a pointer or a history. */
function lines(state: string): string[] {
  const dir = join(state, 'models');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => existsSync(join(dir, n, 'history.jsonl')) || existsSync(join(dir, n, 'current.json')));
}

const f3 = (v: number | null | undefined) => (typeof v === 'number' ? v.toFixed(3) : 'n/a');
const signed = (v: number | null | undefined) => (typeof v === 'number' ? `${v >= 0 ? '+' : ''}${v.toFixed(3)}` : 'n/a');
const isCurrent = (r: HistoryRecord, c: PromotedPointer | null) => !!c && !!r.pointer && r.pointer.runId === c.runId && r.pointer.step === c.step;

function row(r: HistoryRecord): string[] {
  const run = `${r.runId} step ${r.step}`;
  if (r.kind === 'rollback') return [r.time, run, 'rollback', `from ${r.from.runId} step ${r.from.step}`, '', r.reason];
  const against = r.against === 'incumbent' ? 'promoted' : r.against === 'baseline' ? 'base' : '-';
  const scores = `${f3(r.candidate?.accuracy)} vs ${r.incumbent ? `${f3(r.incumbent.accuracy)} (${against})` : '-'}`;
  const delta = r.delta === null ? '' : `${signed(r.delta)} ${formatInterval(r.interval)}`;
  return [r.time, run, r.decision, scores, delta, r.reason];
}

function table(rows: string[][], header: string[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === header.length - 1 ? 0 : r[i]!.length))));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

export const models: Command = {
  name: 'models',
  brief: "a promotion line's current model and its history",
  args: '[--line L] [--json]',
  summary: "The promotion line's current model and every decision (promoted, rejected, with why) and rollback, oldest first; * marks the current model.",
  details: ['Promotion: config promotion.enabled; a run promotes its best checkpoint only when it beats the promoted model beyond noise by promotion.margin.'],
  options: { line: LINE_OPTION, json: JSON_OPTION },
  async run(p) {
    if (p.positionals.length) throw new CliError(`unexpected argument ${JSON.stringify(p.positionals[0])}\nUsage: grpo models [--line L] [--json]   or   grpo models rollback [--line L] [--json]`, 2);
    const state = stateDir();
    const line = lineOf(p);
    const current = readCurrent(state, line);
    const history = readHistory(state, line);
    if (flag(p, 'json')) {
      say(JSON.stringify({ line, dir: join(state, 'models', line), current, history }, null, 2));
      return 0;
    }
    if (!current && !history.length) {
      const known = lines(state);
      say(`line ${line}: no promotion history (${join(state, 'models', line)})${known.length ? `; lines: ${known.join(', ')}` : ''}`);
      return 0;
    }
    say(current ? `line ${line}: current model ${current.runId} step ${current.step} (accuracy ${f3(current.accuracy)} on ${current.numTasks} tasks), promoted ${current.promotedAt}\n  ${current.modelDir}` : `line ${line}: no promoted model`);
    say('');
    const marked = history.map((r, i) => [i === history.map((x) => isCurrent(x, current)).lastIndexOf(true) ? '*' : ' ', ...row(r)]);
    for (const l of table(marked, [' ', 'time', 'run', 'decision', 'candidate vs compared', 'delta [95% CI]', 'reason'])) say(l);
    return 0;
  },
};

export const modelsRollback: Command = {
  name: 'models rollback',
  brief: 'make the previous promoted model current again',
  args: '[--line L] [--json]',
  summary: "Make the line's previous promoted model current again (atomically) and record the rollback in its history.",
  options: { line: LINE_OPTION, json: JSON_OPTION },
  async run(p) {
    const state = stateDir();
    const line = lineOf(p);
    try {
      const r = await rollback(state, line);
      if (flag(p, 'json')) say(JSON.stringify(r, null, 2));
      else say(`line ${line}: ${r.reason}\n  current model: ${r.modelDir}`);
      return 0;
    } catch (e) {
      if (e instanceof RegistryError) throw new CliError(e.message, 1);
      throw e;
    }
  },
};
