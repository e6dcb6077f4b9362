/**
 * Short helper commands (`ray status`, cleanup, plotting, pip installs) through execa: output
 * captured or appended to a log, a timeout, and an exit code instead of an exception. The
 * long-running trainer and Ray head are spawned by src/activities/proc.ts instead (own process
 * group, killed as a whole).
 */
import { execa } from 'execa';

export interface ExecResult {
  code: number;
  /** stdout and stderr interleaved (empty when they went to a log file). */
  output: string;
}

export async function runCommand(
  argv: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; logFile?: string } = {},
): Promise<ExecResult> {
  const out = opts.logFile ? { file: opts.logFile, append: true } : 'pipe';
  const r = await execa(argv[0]!, argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    extendEnv: false,
    timeout: opts.timeoutMs,
    reject: false,
    all: !opts.logFile,
    stdin: 'ignore',
    stdout: out,
    stderr: out,
    maxBuffer: 16 << 20,
  });
  const code = typeof r.exitCode === 'number' ? r.exitCode : r.failed ? (r.code === 'ENOENT' ? 127 : 1) : 0;
  return { code, output: typeof r.all === 'string' ? r.all : '' };
}
