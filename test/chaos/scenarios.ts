/**
 * The seven chaos scenarios. Each injects one real fault into a running training run of the
 * built-in backend (tiny random-weights model) and says which ledger entries it must produce.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Check } from './invariants.js';
import { listProcesses, readJsonLines, sleep, waitFor, type DevServer, type WorkerProcess } from './harness.js';
import { rayTokenPath } from '../../src/ray/head.js';

/** The ray-head-kill scenario's tokens: the one killed with the head and the restarted head's. */
const rayTokens: { before: string | null; after: string | null } = { before: null, after: null };

export interface ScenarioContext {
  runDir: string;
  checkpointDir: string;
  server: DevServer;
  worker(): WorkerProcess;
  /** Start a fresh worker (the old one is gone). */
  replaceWorker(): void;
  /** The trainer venv's python (for prlimit through Python's resource module). */
  python: string;
  hubLog: string | null;
}

export interface Scenario {
  name: string;
  fault: string;
  /** Config overrides on top of the chaos base config. */
  sets: (calibration: Calibration) => string[];
  /** Inject the fault; returns when it happened (epoch ms), or null when it is there from the start (then the ledger's failure time counts). */
  inject: (ctx: ScenarioContext) => Promise<number | null>;
  expectTypes: string[];
  allowTypes: string[];
  needsHub?: boolean;
  needsCalibration?: boolean;
  extraChecks?: (ctx: ScenarioContext) => Check[];
}

export interface Calibration {
  /** RLIMIT_AS that fails at the configured micro batch and fits after halving it (MiB). */
  addressSpaceMb: number;
  peakFullMb: number;
  peakHalfMb: number;
}

/** Wait until the trainer has logged training step >= n (read from metrics.jsonl, no server needed). */
export async function waitForStep(runDir: string, n: number, timeoutMs = 300_000): Promise<void> {
  await waitFor(`training step ${n}`, () => readJsonLines(join(runDir, 'logs', 'metrics.jsonl')).some((r) => r.kind === 'train' && (r.step as number) >= n), timeoutMs, 200);
}

async function trainerPid(checkpointDir: string): Promise<number> {
  return waitFor(
    'the trainer pid file',
    () => {
      const f = join(checkpointDir, 'trainer.pid');
      if (!existsSync(f)) return null;
      try {
        return (JSON.parse(readFileSync(f, 'utf8')) as { pid: number }).pid;
      } catch {
        return null;
      }
    },
    120_000,
  );
}

const FAULT_STEP = 3;

export const SCENARIOS: Scenario[] = [
  {
    name: 'worker-kill',
    fault: 'kill -9 the worker during training, then start a new worker',
    sets: () => [],
    async inject(ctx) {
      await waitForStep(ctx.runDir, FAULT_STEP);
      ctx.worker().kill9();
      const at = Date.now();
      ctx.replaceWorker();
      return at;
    },
    expectTypes: ['WorkerLost'],
    allowTypes: [],
  },
  {
    name: 'trainer-kill',
    fault: 'kill -9 the trainer process',
    sets: () => [],
    async inject(ctx) {
      await waitForStep(ctx.runDir, FAULT_STEP);
      const pid = await trainerPid(ctx.checkpointDir);
      process.kill(pid, 'SIGKILL');
      return Date.now();
    },
    expectTypes: ['Killed'],
    allowTypes: [],
  },
  {
    name: 'ray-head-kill',
    fault: "kill -9 the run's Ray head (GCS, raylet) during training",
    sets: () => [],
    async inject(ctx) {
      await waitForStep(ctx.runDir, FAULT_STEP);
      const info = JSON.parse(readFileSync(join(ctx.runDir, 'ray.json'), 'utf8')) as { pid: number; tempDir: string };
      rayTokens.before = readFileSync(rayTokenPath(ctx.runDir), 'utf8');
      // The restarted head's token, read once the recovery wrote it (kept for the checks below).
      // Polling ends with the run (its summary), whether or not a new token appeared.
      void waitFor('a new Ray token', () => {
        try {
          const t = readFileSync(rayTokenPath(ctx.runDir), 'utf8');
          if (t !== rayTokens.before) return { token: t };
        } catch {
          /* between heads */
        }
        return existsSync(join(ctx.runDir, 'summary.json')) ? { token: null } : null;
      }, 600_000, 200).then((r) => (rayTokens.after = r.token), () => undefined);
      // The head's processes: the `ray start` group and the GCS / raylet daemons of its temp dir.
      const daemons = listProcesses().filter((p) => p.cmd.includes(info.tempDir) && /gcs_server|raylet/.test(p.cmd));
      try {
        process.kill(-info.pid, 'SIGKILL');
      } catch {
        /* group already gone */
      }
      for (const p of daemons) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone with the group */
        }
      }
      return Date.now();
    },
    expectTypes: ['RayFailure'],
    // Ray Train workers may die before the driver notices the GCS is gone: both are Ray failures.
    allowTypes: [],
    extraChecks: (ctx) => {
      const left = spawnSync('grep', ['-rl', rayTokens.before ?? '<none>', ctx.runDir], { encoding: 'utf8' }).stdout.trim();
      return [
        { name: 'the restarted Ray head got a new token', ok: !!rayTokens.before && !!rayTokens.after && rayTokens.after !== rayTokens.before, detail: `before ${rayTokens.before ? 'read' : 'missing'}, after ${rayTokens.after ? 'read' : 'missing'}` },
        { name: 'no Ray token left in the run dir', ok: !existsSync(rayTokenPath(ctx.runDir)) && left === '', detail: left || 'token file removed, no copies' },
      ];
    },
  },
  {
    name: 'oom-address-space',
    fault: 'the trainer runs under an address-space limit that fails at micro batch 8 and fits at 4',
    needsCalibration: true,
    sets: (c) => ['ray.enabled=false', `run.trainer_address_space_mb=${c.addressSpaceMb}`, ...OOM_SHAPE],
    async inject() {
      return null; // the limit is there from the first launch
    },
    expectTypes: ['OutOfMemory'],
    allowTypes: [],
    extraChecks: (ctx) => {
      const summary = JSON.parse(readFileSync(join(ctx.runDir, 'summary.json'), 'utf8')) as { configChanges: string[] };
      const ok = summary.configChanges.includes('policy.train_micro_batch_size=4');
      return [{ name: 'micro batch halved and recorded', ok, detail: `config changes ${JSON.stringify(summary.configChanges)}` }];
    },
  },
  {
    name: 'hub-429-storm',
    fault: 'a storm of HTTP 429 + Retry-After from a local Hub-compatible server during model download',
    needsHub: true,
    sets: () => ['model.source=hf', `model.name=chaos-org/tiny-${Date.now().toString(36)}`],
    async inject() {
      return null; // the storm starts with the first request
    },
    expectTypes: ['RateLimited'],
    allowTypes: [],
    extraChecks: (ctx) => {
      const served = readJsonLines(ctx.hubLog!);
      const n429 = served.filter((r) => r.status === 429).length;
      const n200 = served.filter((r) => r.status === 200 && String(r.path).includes('/resolve/')).length;
      const summary = JSON.parse(readFileSync(join(ctx.runDir, 'summary.json'), 'utf8')) as { ledger: { type: string }[] };
      const limited = summary.ledger.filter((e) => e.type === 'RateLimited').length;
      return [
        { name: 'model came from the Hub server after the storm', ok: n200 > 0, detail: `${n200} files served` },
        { name: 'every ledgered 429 was really served', ok: limited >= 1 && n429 >= limited, detail: `${n429} x 429 served by the server, ${limited} RateLimited ledger entries (the client retried the rest itself)` },
      ];
    },
  },
  {
    name: 'temporal-server-restart',
    fault: 'kill -9 the Temporal dev server mid-run and restart it on the same database',
    sets: () => [],
    async inject(ctx) {
      await waitForStep(ctx.runDir, FAULT_STEP);
      ctx.server.kill9();
      const at = Date.now();
      await sleep(3000);
      await ctx.server.start();
      return at;
    },
    expectTypes: [],
    // Heartbeats fail while the server is away; if its heartbeat timeout fires on restart, the
    // attempt is retried (and ledgered) like a lost worker.
    allowTypes: ['WorkerLost'],
  },
  {
    name: 'checkpoint-write-error',
    fault: 'RLIMIT_FSIZE on the running trainer: the next checkpoint save fails with EFBIG',
    sets: () => ['ray.enabled=false'],
    async inject(ctx) {
      await waitForStep(ctx.runDir, FAULT_STEP);
      const pid = await trainerPid(ctx.checkpointDir);
      // 1 MiB: logs stay below it, the model weights do not.
      const r = spawnSync(ctx.python, ['-c', `import resource as r; h=r.prlimit(${pid}, r.RLIMIT_FSIZE)[1]; r.prlimit(${pid}, r.RLIMIT_FSIZE, (1<<20, h))`], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`prlimit failed: ${r.stderr}`);
      return Date.now();
    },
    expectTypes: ['StorageError'],
    allowTypes: [],
  },
];

/** Rollout shape of the OOM scenario: 8 rollouts per step, micro batch 8, long completions. */
export const OOM_SHAPE = [
  'trainer.grpo.num_prompts_per_step=2',
  'trainer.grpo.num_generations_per_prompt=4',
  'trainer.policy.train_micro_batch_size=8',
  'trainer.policy.generation.max_new_tokens=64',
  'trainer.policy.trainable_layers=null',
];
