/**
 * `grpo` command line: one table of verbs (src/cli/commands/*, src/cli/tools.ts), `--help` on
 * each, `--version`, and "did you mean" for a misspelt verb.
 * Exit codes: 0 ok, 1 run failed / error, 2 invalid config or usage, 3 Temporal server unreachable or port busy.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { redact } from '../common/redact.js';
import { REPO_ROOT } from '../common/state.js';
import { CliError } from './client.js';
import { distance, helpText, parseCommand, usageLine, type Command } from './command.js';
import { configCheck, plan } from './commands/config.js';
import { server, setup, worker } from './commands/local.js';
import { quickstart } from './commands/quickstart.js';
import { run } from './commands/run.js';
import { resume } from './commands/resume.js';
import { models, modelsRollback } from './commands/models.js';
import { cancel, listRuns, logs, status } from './commands/runs.js';
import { SCHEDULE_COMMANDS } from './commands/schedule.js';
import { score } from './commands/score.js';
import { exportCmd, report, verify } from './tools.js';
import { say, warn } from './output.js';

export const COMMANDS: Command[] = [run, resume, status, listRuns, cancel, logs, configCheck, plan, server, worker, quickstart, setup, report, score, exportCmd, verify, ...SCHEDULE_COMMANDS, modelsRollback, models];

export function version(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: grpo <command> [options]   (npm run grpo -- <command> ...)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.brief}`),
    '',
    'grpo <command> --help shows a command\'s options; grpo --version prints the version; --json prints a verb\'s result as JSON.',
    'Environment: GRPO_STATE_DIR (default ./.grpo). The Temporal server, as the temporal CLI finds it: a temporal.toml profile',
    '(TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml; TEMPORAL_PROFILE, default "default") and the variables',
    'TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE (default "default"), TEMPORAL_API_KEY, TEMPORAL_TLS,',
    'TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH / TEMPORAL_TLS_SERVER_CA_CERT_PATH (or their _DATA forms),',
    'TEMPORAL_TLS_SERVER_NAME. GRPO_TEMPORAL_UI_URL: the Web UI to link runs to. HF_TOKEN, WANDB_API_KEY and RAY_AUTH_TOKEN',
    'belong in the worker\'s environment.',
  ].join('\n');
}

/** The verb named by the first words of argv ("config check" takes two), and the rest. */
function lookup(argv: string[]): { command: Command; rest: string[] } | null {
  for (const c of COMMANDS) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w)) return { command: c, rest: argv.slice(words.length) };
  }
  return null;
}

function didYouMean(word: string): string {
  const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))];
  const best = names.map((n) => ({ n, d: distance(word, n) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, Math.floor(word.length / 3)) ? `\nDid you mean: grpo ${best.n}?` : '';
}

export async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    warn(usage());
    return 2;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const sub = argv[1] ? lookup(argv.slice(1)) : null;
    say(sub ? helpText(sub.command) : usage());
    return 0;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    say(version());
    return 0;
  }
  const found = lookup(argv);
  if (!found) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
    if (group.length && (argv[1] === '--help' || argv[1] === '-h')) {
      say(`Usage: ${group.map(usageLine).join('\n       ')}\n\n${group.map((c) => `  ${c.name.padEnd(18)}  ${c.brief}`).join('\n')}\n\ngrpo ${first} <verb> --help shows a verb's options.`);
      return 0;
    }
    if (group.length) throw new CliError(`usage: ${group.map(usageLine).join('\n       ')}`, 2);
    throw new CliError(`unknown command ${JSON.stringify(first)}${didYouMean(first)}\n\n${usage()}`, 2);
  }
  const parsed = parseCommand(found.command, found.rest);
  if (!parsed) return 0;
  return found.command.run(parsed);
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    if (e instanceof CliError) {
      warn(e.message);
      process.exitCode = e.exitCode;
    } else {
      warn(redact((e as Error).stack ?? String(e)));
      process.exitCode = 1;
    }
  }
}
