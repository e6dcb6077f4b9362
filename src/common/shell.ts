/** Commands as a user would type them (`grpo plan`): shell quoting, env prefixes, secrets redacted. */
import type { CommandSpec } from '../backends/types.js';
import { showSecretEnv } from './redact.js';

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderCommand(c: CommandSpec, indent = '    '): string {
  const lines: string[] = [];
  if (c.note) lines.push(`${indent}# ${c.note}`);
  lines.push(`${indent}cd ${shellQuote(c.cwd)}`);
  const env = Object.entries(c.env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  const secrets = c.passEnv.map((n) => showSecretEnv(n));
  const prefix = [...env, ...secrets].map((e) => `${e} \\\n${indent}  `).join('');
  lines.push(`${indent}${prefix}${c.argv.map(shellQuote).join(' ')}`);
  return lines.join('\n');
}
