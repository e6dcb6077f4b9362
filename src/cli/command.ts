/**
 * One table per verb: its usage, options and help text, parsed with node:util's parseArgs.
 * `--help` / `-h` on any verb prints its help and exits 0 before anything else runs.
 */
import { parseArgs } from 'node:util';
import { CliError } from './client.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  default?: string;
  /** Shown in the help table after the option, e.g. k=v or DIR. */
  value?: string;
  help: string;
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  /** One word, or two for a sub-verb ("config check"). */
  name: string;
  /** One line for the list of commands. */
  brief: string;
  /** Arguments after the name, as the usage line shows them. */
  args: string;
  summary: string;
  /** Extra lines of help (examples, what it prints). */
  details?: string[];
  options: Record<string, OptionSpec>;
  run(p: Parsed): Promise<number>;
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help and exit' };

export function usageLine(c: Command): string {
  return `grpo ${c.name}${c.args ? ` ${c.args}` : ''}`;
}

export function helpText(c: Command): string {
  const rows = Object.entries({ ...c.options, help: HELP }).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}${o.multiple ? ' ...' : ''}`;
    return [flag, `${o.help}${o.default !== undefined ? ` (default ${o.default})` : ''}`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return [
    `Usage: ${usageLine(c)}`,
    '',
    c.summary,
    ...(c.details?.length ? ['', ...c.details] : []),
    '',
    'Options:',
    ...rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`),
  ].join('\n');
}

/** Parse a verb's arguments; null when help was asked for (already printed). */
export function parseCommand(c: Command, argv: string[]): Parsed | null {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText(c) + '\n');
    return null;
  }
  const options = Object.fromEntries(
    Object.entries(c.options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }]),
  );
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code?.startsWith('ERR_PARSE_ARGS')) throw new CliError(`${(e as Error).message.split('\n')[0]}\nUsage: ${usageLine(c)}   (grpo ${c.name} --help)`, 2);
    throw e;
  }
}

export const str = (p: Parsed, k: string): string | undefined => (typeof p.values[k] === 'string' ? (p.values[k] as string) : undefined);
export const flag = (p: Parsed, k: string): boolean => p.values[k] === true;
export const list = (p: Parsed, k: string): string[] => (Array.isArray(p.values[k]) ? (p.values[k] as string[]) : []);

/** The one positional a verb needs, or a usage error naming it. */
export function required(c: Command, p: Parsed, index: number, what: string): string {
  const v = p.positionals[index];
  if (!v) throw new CliError(`missing ${what}\nUsage: ${usageLine(c)}   (grpo ${c.name} --help)`, 2);
  return v;
}

export const SET_OPTION: OptionSpec = { type: 'string', multiple: true, value: 'k=v', help: 'override a config field (a.b.c=value, parsed as YAML); repeatable' };
export const JSON_OPTION: OptionSpec = { type: 'boolean', help: 'print the result as JSON' };

/** Edit distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}
