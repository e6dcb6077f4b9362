/**
 * A real one-node Slurm cluster for the Slurm backend's tests: `scripts/slurm-local.sh start`
 * installs Debian's slurm-wlm + munge when missing (first time: apt, allow minutes), starts munged,
 * slurmctld and slurmd, and waits for the node; `status` then checks that a job can be submitted
 * (`sbatch --test-only`). Both are idempotent, and the daemons outlive the test process.
 *
 * What the cluster offers (see the script's header): partition `debug`, one node with gpu:8 as a
 * GRES (no real GPUs), `--nodes` above 1 refused at submit. No slurmdbd: a finished job's state and
 * exit code come from `scontrol show job <id>` (kept MinJobAge=3600 s) or
 * `sacct -c -j <id> --format=JobID,State,ExitCode -n -P` (the job-completion log), not plain sacct.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

const SCRIPT = join(ROOT, 'scripts', 'slurm-local.sh');

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [SCRIPT, ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (!err) return resolve({ code: 0, out });
      const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
      resolve({ code: typeof e.code === 'number' ? e.code : null, out: e.killed ? `${out}\n(timed out after ${timeoutMs} ms)` : `${out}${e.message}` });
    });
  });
}

const tail = (s: string) => s.trim().split('\n').slice(-8).join('\n');

/**
 * Starts the local cluster (or finds it up: a fraction of a second) and says whether a job can be
 * submitted now. Never throws: a test skips or fails with `why` (not Linux, not root, apt or a
 * daemon failed). Safe to call from every test: concurrent starts queue on the script's lock.
 */
export async function ensureLocalSlurm(): Promise<{ ok: true } | { ok: false; why: string }> {
  if (process.platform !== 'linux') return { ok: false, why: `needs Linux, not ${process.platform}` };
  const start = await run(['start'], 10 * 60_000);
  if (start.code !== 0) return { ok: false, why: `slurm-local.sh start failed (exit ${start.code}):\n${tail(start.out)}` };
  const status = await run(['status'], 60_000);
  if (status.code !== 0) return { ok: false, why: `slurm-local.sh status: ${tail(status.out)}` };
  return { ok: true };
}
