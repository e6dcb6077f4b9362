/** The workflow's input checked before any activity, and failures read back as status entries. Deterministic code only. */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { RUN_ID_PATTERN, type FailureInfo, type StageName, type TrainingRunInput } from '../common/types.js';

/** Validate the workflow input itself (before any activity); throws a non-retryable failure naming the field. */
export function validateInput(input: unknown): TrainingRunInput {
  const fail = (field: string, msg: string): never => {
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: `${field}: ${msg}` });
  };
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    fail('input', `expected an object like {"configPath":"configs/builtin-cpu.yaml"}, got ${input === null ? 'null' : Array.isArray(input) ? 'a list' : typeof input}`);
  const i = input as Record<string, unknown>;
  const allowed = ['configPath', 'config', 'set', 'runId', 'force', 'source', 'resume', 'carry'];
  for (const k of Object.keys(i)) if (!allowed.includes(k)) fail(k, `unknown input field (allowed: ${allowed.join(', ')})`);
  const hasPath = i.configPath !== undefined;
  const hasInline = i.config !== undefined;
  if (hasPath === hasInline) fail('configPath', `exactly one of configPath or config is required, got ${hasPath ? 'both' : 'neither'}`);
  if (hasPath && (typeof i.configPath !== 'string' || i.configPath === '')) fail('configPath', `expected a non-empty string, got ${JSON.stringify(i.configPath)}`);
  if (hasInline && (i.config === null || typeof i.config !== 'object' || Array.isArray(i.config))) fail('config', 'expected an object (the same shape as a config YAML)');
  if (i.set !== undefined && (!Array.isArray(i.set) || i.set.some((s) => typeof s !== 'string' || !s.includes('='))))
    fail('set', 'expected a list of "a.b.c=value" strings');
  if (i.runId !== undefined && (typeof i.runId !== 'string' || !RUN_ID_PATTERN.test(i.runId)))
    fail('runId', `expected letters, digits, '.', '_' or '-' (max 100 chars), got ${JSON.stringify(i.runId)}`);
  if (i.source !== undefined && typeof i.source !== 'string') fail('source', `expected a string, got ${JSON.stringify(i.source)}`);
  if (i.force !== undefined && typeof i.force !== 'boolean') fail('force', `expected a boolean, got ${JSON.stringify(i.force)}`);
  const r = i.resume as Record<string, unknown> | undefined;
  if (r !== undefined && (r === null || typeof r !== 'object' || typeof r.executionRunId !== 'string' || typeof r.endedAs !== 'string'))
    fail('resume', 'expected {"executionRunId": "...", "endedAs": "FAILED"} (set by grpo resume)');
  if (i.carry !== undefined && (i.carry === null || typeof i.carry !== 'object')) fail('carry', 'internal hand-over between executions; do not set it');
  return i as TrainingRunInput;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function failureOf(err: unknown, stage: StageName, attempt: number): FailureInfo {
  let type = 'Unknown';
  let message = err instanceof Error ? err.message : String(err);
  let step: number | null = null;
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    type = cause.type ?? 'Unknown';
    message = cause.message;
    const d = cause.details?.[0] as { step?: number } | undefined;
    if (d && typeof d.step === 'number') step = d.step;
  } else if (cause instanceof Error) {
    type = cause.name;
    message = cause.message;
  }
  return { stage, attempt, type, message, step, time: iso(Date.now()) };
}
