/**
 * How any `python -m grpo_trainer ...` command is spelled: the module, where it is imported from
 * (the checkout's trainer/, or GRPO_TRAINER_DIR: a test double, for tests only) and the
 * environment every one of them gets. The backend, the report, BFCL and the CLI's file tools use it.
 */
import { join } from 'node:path';
import { REPO_ROOT } from './state.js';

export const TRAINER_MODULE = 'grpo_trainer';

export function trainerImportDir(): string {
  return process.env.GRPO_TRAINER_DIR || join(REPO_ROOT, 'trainer');
}

/** argv and environment additions of `python -m grpo_trainer <args>` (offline unless told otherwise). */
export function trainerCommand(python: string, args: string[], opts: { offline?: boolean } = {}): { argv: string[]; env: Record<string, string> } {
  const env: Record<string, string> = { PYTHONPATH: trainerImportDir(), PYTHONUNBUFFERED: '1' };
  if (opts.offline ?? true) env.HF_HUB_OFFLINE = '1';
  return { argv: [python, '-m', TRAINER_MODULE, ...args], env };
}

/** The "warning: ..." lines `grpo_trainer check-config` prints, one per warning, without the prefix. */
export function checkConfigWarnings(output: string): string[] {
  return output
    .split('\n')
    .filter((l) => /^warning:/i.test(l))
    .map((l) => l.replace(/^warning:\s*/i, '').trim());
}
