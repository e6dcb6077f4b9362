/**
 * The one failure classifier: turns a failed attempt (the trainer's failure.json, its exit code or
 * signal, the tail of its log) into a failure type that picks a recovery policy.
 *
 * Table-driven: RULES is read top to bottom and the first matching row wins, so specific evidence
 * (a typed failure.json, a kernel OOM kill) comes before log-text guesses, and log texts come
 * before the catch-all. Every row names where its text comes from. The known failure texts are
 * contracts/failure-texts.json, which the built-in trainer reads too (it classifies its own
 * exceptions with them).
 */
import { loadContract } from '../common/contracts.js';
import { FAILURE_TYPES, type FailureType } from './types.js';


export { FAILURE_TYPES, FATAL_TYPES, type FailureType } from './types.js';

export interface FailureEvidence {
  /** The trainer's failure.json, when it wrote one. */
  report?: { type: string; message: string; step: number | null; retryAfterSeconds?: number | null } | null;
  exitCode: number | null;
  signal: string | null;
  /** Tail of the process's combined stdout/stderr. */
  logTail: string;
  /** The kernel's OOM killer ended a process of ours while this attempt ran (cgroup memory.events). */
  oomKillObserved?: boolean;
}

export interface Classification {
  type: FailureType;
  /** Id of the table row that matched. */
  rule: string;
  /** Seconds to wait before retrying, when the failure said (HTTP Retry-After). */
  retryAfterSeconds: number | null;
  /** The line of the failure's text that a text row matched (it names the cause, e.g. the config key). */
  evidence?: string;
}

export interface ClassifierRule {
  id: string;
  type: FailureType;
  /** Where the matched text or signal comes from. */
  source: string;
  match: (e: FailureEvidence) => boolean;
  /** For rows that match text: the whole line where the match starts. */
  evidence?: (e: FailureEvidence) => string | undefined;
}

const REPORTED_TYPES = new Set<string>(FAILURE_TYPES.filter((t) => t !== 'Unknown'));

const killedBySigkill = (e: FailureEvidence) => e.signal === 'SIGKILL' || e.exitCode === 137;
/** Text the failure left anywhere: the trainer's message and the log tail. */
const text = (e: FailureEvidence) => `${e.report?.message ?? ''}\n${e.logTail}`;

interface TextRow {
  id: string;
  type: FailureType;
  pattern: string;
  flags: string;
  source: string;
}

/** Rows that match a known failure text, in the contract's order. */
const TEXT_RULES: ClassifierRule[] = loadContract<{ rows: TextRow[] }>('failure-texts.json').rows.map((r) => {
  const re = new RegExp(r.pattern, r.flags);
  const line = (e: FailureEvidence) => {
    const t = text(e);
    const m = re.exec(t);
    if (!m) return undefined;
    const start = t.lastIndexOf('\n', m.index) + 1;
    const end = t.indexOf('\n', m.index + Math.max(1, m[0].length));
    return t.slice(start, end < 0 ? undefined : end).trim();
  };
  return { id: r.id, type: r.type, source: r.source, match: (e: FailureEvidence) => re.test(text(e)), evidence: line };
});

export const RULES: ClassifierRule[] = [
  {
    id: 'report-type',
    type: 'Unknown', // replaced by the report's own type in classifyFailure
    source: "the trainer's own failure.json (grpo_trainer/failures.py classifies the exception chain)",
    match: (e) => !!e.report && REPORTED_TYPES.has(e.report.type),
  },
  {
    id: 'kernel-oom-kill',
    type: 'OutOfMemory',
    source: 'exit 137 / SIGKILL while the cgroup memory.events oom_kill counter rose (Linux OOM killer)',
    match: (e) => killedBySigkill(e) && !!e.oomKillObserved,
  },
  ...TEXT_RULES,
  {
    id: 'exit-2-usage',
    type: 'InvalidConfig',
    source: "the trainer's CLI: exit code 2 means invalid config or usage (grpo_trainer/cli.py)",
    match: (e) => e.exitCode === 2,
  },
  {
    id: 'sigkill-no-oom-evidence',
    type: 'Killed',
    source: 'exit 137 / SIGKILL without an OOM-killer record: killed by an operator, a scheduler or a crash handler',
    match: killedBySigkill,
  },
  {
    id: 'catch-all',
    type: 'Unknown',
    source: 'anything else: retried with backoff within its own budget',
    match: () => true,
  },
];

/** Seconds from "Retry-After: 30" / "retry_after=30" in the failure's text (null when absent). */
export function parseRetryAfter(s: string): number | null {
  const m = /retry[-_ ]after["']?\s*[:=]?\s*"?([\d.]+)/i.exec(s);
  if (!m) return null;
  const v = Number(m[1]);
  return Number.isFinite(v) && v >= 0 ? v : null;
}

export function classifyFailure(e: FailureEvidence): Classification {
  for (const rule of RULES) {
    if (!rule.match(e)) continue;
    const type = rule.id === 'report-type' ? (e.report!.type as FailureType) : rule.type;
    const retryAfterSeconds = type === 'RateLimited' ? (e.report?.retryAfterSeconds ?? parseRetryAfter(text(e))) : null;
    const evidence = rule.evidence?.(e);
    return { type, rule: rule.id, retryAfterSeconds, ...(evidence ? { evidence } : {}) };
  }
  /* c8 ignore next: the catch-all always matches */
  return { type: 'Unknown', rule: 'catch-all', retryAfterSeconds: null };
}
