/**
 * The prepareEnvironment stage: the trainer's environment (built only when its lock files change,
 * src/environment/trainer.ts), then the trainer's own check of its config section.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { getBackend } from '../backends/index.js';
import { log } from '../common/activity-context.js';
import { checkConfigWarnings } from '../common/trainer-command.js';
import type { EnvInfo, ResolvedRun } from '../common/types.js';
import { ensureTrainerEnvironment } from '../environment/trainer.js';
import { runSimple } from './failure.js';
import { backendCtx } from './support.js';

/** Build (or reuse) the trainer environment from its lock files. */
export async function prepareEnvironment(input: { run: ResolvedRun; force?: boolean }): Promise<EnvInfo> {
  return ensureTrainerEnvironment(backendCtx(input.run), { force: !!input.force, owner: input.run.runId });
}

/**
 * The trainer's own check of its section: exit 2 is a non-retryable InvalidConfig naming the key;
 * its "warning: ..." lines (the trainer owns the rules about its section) go to the run's warnings.
 */
export async function checkTrainerConfig(input: { run: ResolvedRun; env: EnvInfo }): Promise<{ ok: boolean; skipped: boolean; warnings: string[] }> {
  const { run, env } = input;
  const backend = getBackend(run.config.backend);
  const pre = backend.preflight?.(backendCtx(run, { env }), process.env) ?? { errors: [], warnings: [] };
  if (pre.errors.length) throw ApplicationFailure.create({ type: 'InvalidConfig', nonRetryable: true, message: pre.errors.join('; ') });
  for (const w of pre.warnings) log('warn', w);
  const spec = backend.checkConfig(backendCtx(run, { env }));
  if (!spec) return { ok: true, skipped: true, warnings: pre.warnings };
  const logName = 'check-config.log';
  await rm(join(run.paths.logDir, logName), { force: true });
  const r = await runSimple(run, spec, logName, 'prepareEnvironment');
  if (r.code === 0) {
    const out = await readFile(join(run.paths.logDir, logName), 'utf8').catch(() => r.tail);
    return { ok: true, skipped: false, warnings: [...pre.warnings, ...checkConfigWarnings(out)] };
  }
  if (r.code === 2) {
    const lines = r.tail.trim().split('\n').filter((l) => l.trim() && !l.startsWith('====='));
    const why = lines.filter((l) => /invalid config|error/i.test(l)).at(-1) ?? lines.at(-1) ?? '';
    throw ApplicationFailure.create({ type: 'InvalidConfig', nonRetryable: true, message: `the trainer's check-config rejected the trainer section: ${why.replace(/^invalid config:\s*/, 'trainer.')}` });
  }
  throw ApplicationFailure.create({ type: 'TrainerCrashed', message: `check-config exited with code ${r.code}\n${r.tail.slice(-1500)}` });
}
