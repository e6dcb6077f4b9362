/** What every verb shares: printing, loading a config with a usage error, new run ids. */
import { ConfigError, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { CliError } from './client.js';

export const say = (m: string) => process.stdout.write(m + '\n');
export const warn = (m: string) => process.stderr.write(m + '\n');

export function loadOrExplain(path: string | undefined, sets: string[]): LoadedConfig {
  if (!path) throw new CliError('missing <config> argument (e.g. configs/builtin-cpu.yaml)', 2);
  try {
    return loadConfigFile(path, sets);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message, 2);
    throw e;
  }
}

export function newRunId(): string {
  const d = new Date();
  const p = (x: number) => String(x).padStart(2, '0');
  return `run-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}-${Math.random().toString(36).slice(2, 6)}`;
}
