/**
 * The train stage's view of a Slurm job: like a child process (an exit to wait for, a way to stop
 * it, a log to follow), so the same supervision (heartbeats, cancellation, failure classification)
 * serves local and Slurm launches. The job is the run's: submitted once, re-attached by a restarted
 * worker, resubmitted with --dependency=singleton only after a failed job has ended.
 */
import type { CommandSpec } from '../backends/types.js';
import { log } from '../common/activity-context.js';
import type { Spawned } from '../process/proc.js';
import { cancelJob, driverLogPath, jobState, readJobRecord, submitJob, type SlurmJobRecord } from './job.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FollowedJob {
  record: SlurmJobRecord;
  child: Spawned;
  /** ray.sub's ray-driver.log of this job. */
  driverLog: string;
  /** True when this attempt found the job already queued or running (a restarted worker). */
  reattached: boolean;
}

/** Exit code of an ended job; a job Slurm cancelled or timed out has none of its own. */
function exitOf(state: string, exitCode: number | null): { code: number | null; signal: NodeJS.Signals | null } {
  if (state === 'CANCELLED') return { code: null, signal: 'SIGTERM' };
  if (state === 'TIMEOUT' || state === 'PREEMPTED' || state === 'NODE_FAIL') return { code: null, signal: 'SIGKILL' };
  if (exitCode !== null) return { code: exitCode, signal: null };
  return { code: state === 'COMPLETED' ? 0 : 1, signal: null };
}

/**
 * Attach to the run's live job, or submit one: `submit` for the first job of the run,
 * `resubmit` (with --dependency=singleton) when an earlier job exists.
 */
export async function startOrAttach(runDir: string, logBase: string, submit: CommandSpec, resubmit: CommandSpec, pollMs: number): Promise<FollowedJob> {
  const previous = await readJobRecord(runDir);
  let record: SlurmJobRecord;
  let reattached = false;
  if (previous && (await jobState(previous.jobId)).live) {
    record = previous;
    reattached = true;
    log('info', 're-attached to the run\'s Slurm job', { jobId: record.jobId });
  } else {
    record = await submitJob(previous ? resubmit : submit, runDir, logBase, previous);
    log('info', previous ? 'resubmitted the run\'s Slurm job (after the previous one ended)' : 'submitted the run\'s Slurm job', { jobId: record.jobId, previous: previous?.jobId });
  }
  let cancelled = false;
  const exit = (async () => {
    for (;;) {
      const s = await jobState(record.jobId).catch(() => null);
      if (s && !s.live) return exitOf(cancelled ? 'CANCELLED' : s.state, s.exitCode);
      await sleep(pollMs);
    }
  })();
  const child: Spawned = {
    pid: 0,
    exit,
    cancel: async () => {
      cancelled = true;
      await cancelJob(record.jobId);
    },
  };
  return { record, child, driverLog: driverLogPath(record), reattached };
}
