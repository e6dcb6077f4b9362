/** `grpo schedule`'s pure helpers: checking --cron / durations / names before the server sees them, and the text it prints. */
import { RUN_ID_PATTERN } from '../common/types.js';
import { CliError } from './client.js';

/** Temporal appends `-2026-12-02T10:30:00Z` (21 characters) to a fire's workflow id; its run id must stay within 100. */
export const MAX_SCHEDULE_NAME = 100 - 21;

export const OVERLAP_POLICIES = ['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'TERMINATE_OTHER', 'ALLOW_ALL'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export function checkScheduleName(name: string): string {
  if (!RUN_ID_PATTERN.test(name) || name.length > MAX_SCHEDULE_NAME)
    throw new CliError(`<name>: expected letters, digits, '.', '_' or '-' starting with a letter or digit (max ${MAX_SCHEDULE_NAME}), got ${JSON.stringify(name)}`, 2);
  return name;
}

export function checkOverlap(value: string): OverlapPolicy {
  const v = value.toUpperCase().replace(/^SCHEDULE_OVERLAP_POLICY_/, '');
  if (!(OVERLAP_POLICIES as readonly string[]).includes(v)) throw new CliError(`--overlap: expected one of ${OVERLAP_POLICIES.join(', ')}, got ${JSON.stringify(value)}`, 2);
  return v as OverlapPolicy;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration like 30s, 10m, 1h30m or 2d, in milliseconds; a usage error naming the option otherwise. */
export function parseDuration(option: string, value: string, minMs = 1000): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (!value || parts.map((p) => p[0]).join('') !== value)
    throw new CliError(`${option}: expected a duration such as 30s, 10m, 1h30m or 2d, got ${JSON.stringify(value)}`, 2);
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
  if (ms < minMs) throw new CliError(`${option}: expected at least ${minMs / 1000}s, got ${JSON.stringify(value)}`, 2);
  return Math.round(ms);
}

export function formatDuration(ms: number): string {
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  let rest = ms;
  const out = units.map(([u, n]) => {
    const k = Math.floor(rest / n);
    rest -= k * n;
    return k ? `${k}${u}` : '';
  });
  return out.join('') + (rest ? `${rest}ms` : '') || '0s';
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const FIELDS: { name: string; min: number; max: number; names?: string[] }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day of week', min: 0, max: 7, names: DAYS },
];
const MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];

/**
 * Check a 5-field cron expression (minute hour day-of-month month day-of-week; `*`, lists, ranges,
 * steps, JAN-DEC / SUN-SAT) or a macro such as @daily; a usage error naming --cron otherwise.
 */
export function checkCron(expr: string): string {
  const e = expr.trim();
  const bad = (why: string) => new CliError(`--cron: ${why} in ${JSON.stringify(expr)} (expected 5 fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *" for 03:00 UTC daily)`, 2);
  if (e.startsWith('@')) {
    if (MACROS.includes(e.toLowerCase())) return e;
    if (e.toLowerCase().startsWith('@every')) throw bad('use --every DURATION instead of @every');
    throw bad(`unknown macro ${e.split(/\s/)[0]} (known: ${MACROS.join(', ')})`);
  }
  const fields = e.split(/\s+/);
  if (fields.length !== 5) throw bad(`${fields.length} field(s)`);
  fields.forEach((f, i) => {
    const spec = FIELDS[i]!;
    const value = (v: string): number => {
      const named = spec.names?.indexOf(v.toUpperCase()) ?? -1;
      const n = named >= 0 ? named + (spec.min === 1 ? 1 : 0) : /^\d+$/.test(v) ? Number(v) : NaN;
      if (!(n >= spec.min && n <= spec.max)) throw bad(`${spec.name} ${JSON.stringify(v)} is not in ${spec.min}-${spec.max}`);
      return n;
    };
    for (const item of f.split(',')) {
      const m = /^(\*|\?|[^-/]+(?:-[^-/]+)?)(?:\/(\d+))?$/.exec(item);
      if (!m || (m[2] !== undefined && Number(m[2]) < 1)) throw bad(`${spec.name} field ${JSON.stringify(f)} is malformed`);
      if (m[1] === '*' || m[1] === '?') continue;
      const [a, b] = m[1]!.split('-');
      if (b !== undefined && value(a!) > value(b)) throw bad(`${spec.name} range ${JSON.stringify(m[1])} runs backwards`);
      value(a!);
    }
  });
  return e;
}

// ---------------------------------------------------------------------------------------------
// Output

interface Range {
  start: number | string;
  end: number | string;
  step: number;
}

/** A calendar spec (what the server keeps of a cron) written back as cron fields: `0 3 * * *`. */
export function calendarText(c: { second: Range[]; minute: Range[]; hour: Range[]; dayOfMonth: Range[]; month: Range[]; dayOfWeek: Range[]; year: Range[] }): string {
  const short = (v: number | string) => (typeof v === 'string' ? v.slice(0, 3) : String(v));
  const field = (rs: Range[], full: [number | string, number | string]) =>
    rs.length === 0 || rs.every((r) => r.start === full[0] && r.end === full[1] && r.step === 1)
      ? '*'
      : rs.map((r) => (r.start === r.end ? short(r.start) : `${short(r.start)}-${short(r.end)}`) + (r.step > 1 ? `/${r.step}` : '')).join(',');
  const seconds = field(c.second, [0, 0]);
  const fields = [field(c.minute, [0, 59]), field(c.hour, [0, 23]), field(c.dayOfMonth, [1, 31]), field(c.month, ['JANUARY', 'DECEMBER']), field(c.dayOfWeek, ['SUNDAY', 'SATURDAY'])];
  return `calendar "${fields.join(' ')}"${seconds === '*' ? '' : ` second ${seconds}`}${c.year.length ? ` year ${field(c.year, [0, 0])}` : ''}`;
}

export interface ScheduleRunRow {
  workflowId: string;
  runId: string;
  scheduledAt: string;
  status: string;
}

export interface ScheduleView {
  name: string;
  spec: string;
  config: string | null;
  set: string[];
  paused: boolean;
  note: string | null;
  overlap: string;
  catchupWindow: string;
  pauseOnFailure: boolean;
  taskQueue: string | null;
  nextFireTimes: string[];
  recentRuns: ScheduleRunRow[];
  running: string[];
  actionsTaken: number;
  skippedForOverlap: number;
  missedCatchupWindow: number;
}

export function renderSchedule(v: ScheduleView): string {
  return [
    `Schedule ${v.name}: ${v.paused ? `PAUSED${v.note ? ` (${v.note})` : ''}` : 'active'}`,
    `  spec:            ${v.spec}`,
    `  config:          ${v.config ?? '(unknown)'}${v.set.length ? ` --set ${v.set.join(' --set ')}` : ''}`,
    `  policies:        overlap ${v.overlap}, catch-up window ${v.catchupWindow}, pause on failure ${v.pauseOnFailure ? 'yes' : 'no'}`,
    `  task queue:      ${v.taskQueue ?? '(unknown)'}`,
    `  fires:           ${v.actionsTaken} taken, ${v.skippedForOverlap} skipped for overlap, ${v.missedCatchupWindow} missed the catch-up window`,
    `  next fire times: ${v.nextFireTimes.length ? v.nextFireTimes.join(', ') : '(none)'}`,
    v.recentRuns.length ? '  recent runs:' : '  recent runs:     (none yet)',
    ...v.recentRuns.map((r) => `    ${r.scheduledAt}  ${r.status.padEnd(10)} ${r.workflowId}${r.runId !== r.workflowId ? `  (run id ${r.runId})` : ''}`),
  ].join('\n');
}
