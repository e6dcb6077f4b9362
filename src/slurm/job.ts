/**
 * A Slurm batch job as the train stage sees it: submitted once with `sbatch --parsable`, its id
 * kept in the run dir (durable: a restarted worker re-attaches instead of submitting again),
 * followed with `squeue` while it is queued or running, its end read from `sacct` (or `scontrol
 * show job` where accounting is off), cancelled with `scancel`.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../common/exec.js';
import type { CommandSpec } from '../backends/types.js';
import { childEnv } from '../process/proc.js';

export interface SlurmJobRecord {
  jobId: string;
  jobName: string;
  submittedAt: string;
  /** Where ray.sub writes `<job id>-logs/` (its BASE_LOG_DIR). */
  logBase: string;
  /** How many jobs this run has submitted so far (this one included). */
  submissions: number;
  /** The run's earlier jobs, oldest first. */
  previous: string[];
}

export const jobRecordPath = (runDir: string) => join(runDir, 'slurm-job.json');

export async function readJobRecord(runDir: string): Promise<SlurmJobRecord | null> {
  const p = jobRecordPath(runDir);
  return existsSync(p) ? (JSON.parse(await readFile(p, 'utf8')) as SlurmJobRecord) : null;
}

async function writeJobRecord(runDir: string, r: SlurmJobRecord): Promise<void> {
  const p = jobRecordPath(runDir);
  await writeFile(`${p}.tmp`, JSON.stringify(r, null, 2));
  await rename(`${p}.tmp`, p);
}

/** sbatch refused the job (`sbatch: error: ...`: the request itself is wrong) or could not reach Slurm. */
export class SbatchError extends Error {
  readonly refused: boolean;
  constructor(
    readonly code: number,
    readonly output: string,
  ) {
    super(`sbatch failed (exit ${code}): ${output}`);
    this.refused = /sbatch: error:/.test(output) && !/Unable to contact slurm controller|Socket timed out|Zero Bytes were transmitted/i.test(output);
  }
}

/** Submit and record the job (before anything else can fail, so a crash right after is re-attached). */
export async function submitJob(spec: CommandSpec, runDir: string, logBase: string, previous: SlurmJobRecord | null): Promise<SlurmJobRecord> {
  const r = await runCommand(spec.argv, { cwd: spec.cwd, env: childEnv(spec), timeoutMs: 120_000 });
  const id = r.output.trim().split('\n').at(-1)?.split(';')[0]?.trim() ?? '';
  if (r.code !== 0 || !/^\d+$/.test(id)) throw new SbatchError(r.code, r.output.trim().slice(-1000));
  const name = spec.argv.find((a) => a.startsWith('--job-name='))?.slice('--job-name='.length) ?? '';
  const record = { jobId: id, jobName: name, submittedAt: new Date().toISOString(), logBase, submissions: (previous?.submissions ?? 0) + 1, previous: previous ? [...(previous.previous ?? []), previous.jobId] : [] };
  await writeJobRecord(runDir, record);
  return record;
}

/** States in which the job still runs or will run. */
const LIVE = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'RESIZING', 'SIGNALING', 'STAGE_OUT']);

export interface JobState {
  state: string;
  live: boolean;
  /** The batch script's exit code, once it ended (null while running or unknown). */
  exitCode: number | null;
}

function fromSacct(output: string): JobState | null {
  const row = output.trim().split('\n').find((l) => l.includes('|'));
  if (!row) return null;
  const [state, exit] = row.split('|');
  const s = (state ?? '').split(' ')[0]!;
  return s ? { state: s, live: LIVE.has(s), exitCode: exit ? Number(exit.split(':')[0]) : null } : null;
}

/**
 * The job's state now: squeue while Slurm lists it as queued or running; then sacct (accounting),
 * `scontrol show job` (while slurmctld remembers the job: MinJobAge), and `sacct -c` (the job
 * completion log, for clusters without slurmdbd).
 */
export async function jobState(jobId: string): Promise<JobState> {
  const q = await runCommand(['squeue', '-h', '-j', jobId, '-o', '%T'], { timeoutMs: 30_000 });
  const queued = q.code === 0 ? q.output.trim().split('\n')[0]?.trim() : '';
  if (queued && LIVE.has(queued)) return { state: queued, live: true, exitCode: null };
  const a = await runCommand(['sacct', '-n', '-P', '-X', '-j', jobId, '--format=State,ExitCode'], { timeoutMs: 30_000 });
  const accounted = a.code === 0 ? fromSacct(a.output) : null;
  if (accounted) return accounted;
  const c = await runCommand(['scontrol', 'show', 'job', '-o', jobId], { timeoutMs: 30_000 });
  const state = c.code === 0 ? /\bJobState=(\S+)/.exec(c.output)?.[1] : undefined;
  // " ExitCode=" (not DerivedExitCode): the batch script's own status.
  const exit = / ExitCode=(\d+):\d+/.exec(c.output)?.[1];
  if (state) return { state, live: LIVE.has(state), exitCode: exit !== undefined ? Number(exit) : null };
  const completion = await runCommand(['sacct', '-c', '-n', '-P', '-j', jobId, '--format=State,ExitCode'], { timeoutMs: 30_000 });
  const completed = completion.code === 0 ? fromSacct(completion.output) : null;
  if (completed) return completed;
  // Slurm no longer knows the job and keeps no record: it ended, how is unknown.
  return { state: 'UNKNOWN', live: false, exitCode: null };
}

export async function cancelJob(jobId: string): Promise<void> {
  await runCommand(['scancel', jobId], { timeoutMs: 30_000 });
}

/** ray.sub's driver log for the job: `<base>/<job id>-logs/ray-driver.log` (or `<job id>-<restart>-logs` after a requeue). */
export function driverLogPath(record: SlurmJobRecord, restartCount = 0): string {
  return join(record.logBase, restartCount > 0 ? `${record.jobId}-${restartCount}-logs` : `${record.jobId}-logs`, 'ray-driver.log');
}
