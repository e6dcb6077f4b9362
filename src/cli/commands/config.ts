/** `grpo config check` and `grpo plan`: a config read, checked and explained; nothing runs. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { getBackend } from '../../backends/index.js';
import type { LoadedConfig } from '../../config/load.js';
import { REPO_ROOT, runPaths, stateDir } from '../../common/state.js';
import { checkConfigWarnings } from '../../common/trainer-command.js';
import { runQuiet } from '../../server/index.js';
import { flag, JSON_OPTION, list, required, SET_OPTION, str, type Command } from '../command.js';
import { loadOrExplain, say, warn } from '../output.js';
import { renderPlan } from '../plan.js';

export interface TrainerCheck {
  ran: boolean;
  ok: boolean;
  output: string;
  /** The trainer's own warnings about its section ("warning: ..." lines of check-config). */
  warnings: string[];
  envDir: string;
}

/** Run the trainer's own check-config on the config's trainer section, when its environment exists. */
export async function trainerCheck(loaded: LoadedConfig): Promise<TrainerCheck> {
  const backend = getBackend(loaded.config.backend);
  const state = stateDir(loaded.config.state_dir);
  const tmp = mkdtempSync(join(tmpdir(), 'grpo-check-'));
  try {
    const paths = { ...runPaths(state, 'config-check'), trainerConfig: join(tmp, 'trainer.yaml') };
    const ctx = { config: loaded.config, repoRoot: REPO_ROOT, stateDir: state, paths };
    const env = backend.environment(ctx);
    const spec = backend.checkConfig(ctx);
    if (!spec || !existsSync(env.python)) return { ran: false, ok: true, output: '', warnings: [], envDir: env.dir };
    writeFileSync(paths.trainerConfig, toYaml(loaded.config.trainer));
    const log = join(tmp, 'check.log');
    const code = await runQuiet(spec.argv, { cwd: spec.cwd, env: { ...process.env, ...spec.env }, logFile: log });
    const output = existsSync(log) ? readFileSync(log, 'utf8').trim() : '';
    return { ran: true, ok: code === 0, output, warnings: checkConfigWarnings(output), envDir: env.dir };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export const configCheck: Command = {
  name: 'config check',
  brief: 'validate a config (exit 0 valid, 2 invalid)',
  args: '<config> [--set k=v]...',
  summary: "Validate a config: the pipeline's schema, then the trainer's own check-config once its environment exists. Exit 0 valid, 2 invalid.",
  options: { set: SET_OPTION, json: JSON_OPTION },
  async run(p) {
    const loaded = loadOrExplain(required(this, p, 0, '<config>'), list(p, 'set'));
    const check = await trainerCheck(loaded);
    if (flag(p, 'json')) {
      say(JSON.stringify({ valid: check.ok, source: loaded.source, warnings: loaded.warnings, trainerWarnings: check.warnings, trainerChecked: check.ran, ...(check.ok ? {} : { trainerOutput: check.output }) }, null, 2));
      return check.ok ? 0 : 2;
    }
    for (const w of loaded.warnings) warn(`Warning: ${w}`);
    if (!check.ok) {
      warn(`Invalid trainer section (the trainer's check-config says):\n${check.output}`);
      return 2;
    }
    for (const w of check.warnings) warn(`Warning (trainer): ${w}`);
    say(check.ran ? `OK: ${loaded.source} is valid (pipeline schema and the trainer's check-config).` : `OK: ${loaded.source} is valid (pipeline schema; the trainer's check-config runs once its environment exists under ${check.envDir}).`);
    return 0;
  },
};

export const plan: Command = {
  name: 'plan',
  brief: 'every stage with the exact commands and environment',
  args: '<config> [--set k=v]... [--run-id ID]',
  summary: 'Print every stage of a run with the exact commands and environment (secrets redacted). Runs nothing.',
  options: { set: SET_OPTION, 'run-id': { type: 'string', value: 'ID', help: 'the run id to show in paths' }, json: { type: 'boolean', help: 'print {source, warnings, plan} as JSON' } },
  async run(p) {
    const loaded = loadOrExplain(required(this, p, 0, '<config>'), list(p, 'set'));
    const text = renderPlan(loaded, str(p, 'run-id') ?? '<run-id>');
    say(flag(p, 'json') ? JSON.stringify({ source: loaded.source, backend: loaded.config.backend, warnings: loaded.warnings, plan: text }, null, 2) : text);
    return 0;
  },
};

