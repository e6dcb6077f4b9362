/**
 * Benchmark (not a test): the pipeline's overhead and the worker's memory.
 *  - wall time of a run through the pipeline (workflow start → completion, worker as its own process)
 *  - the same trainer command run directly with the same config (same trainer YAML + overrides)
 *  - the worker's resident memory (peak VmRSS of the worker process during the run)
 * Targets: overhead ≤ 2 %, worker RSS ≤ 200 MB. Prints JSON.
 *   npm run bench -- [--reps N] [--set k=v]...   (defaults: tiny-random model, 4 steps, one segment, no eval, no Ray)
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { loadConfigFile } from '../src/config/load.js';
import { REPO_ROOT, runPaths, stateDir } from '../src/common/state.js';
import { getBackend } from '../src/backends/index.js';
import { freeLocalPort, startDevServer } from '../src/server/index.js';
import { TASK_QUEUE, type RunStatus } from '../src/common/types.js';
import { spawnToLog } from '../src/process/proc.js';
import { GRPO_BIN, workerSpawnEnv } from '../src/worker/paths.js';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '1' }, set: { type: 'string', multiple: true } } });
const sets = [
  'model.source=tiny-random',
  'ray.enabled=false',
  'eval.baseline=false',
  'eval.final=false',
  'trainer.grpo.max_num_steps=4',
  'run.segment_steps=4',
  'trainer.checkpointing.save_period=2',
  'trainer.grpo.val_period=2',
  ...(values.set ?? []),
];
const loaded = loadConfigFile(join(REPO_ROOT, 'configs', 'builtin-cpu.yaml'), sets);
const state = stateDir(loaded.config.state_dir);
const python = join(state, 'envs', 'builtin', 'bin', 'python');
if (!existsSync(python)) throw new Error(`trainer env missing (${python}); run npm test or npm run grpo -- setup first`);

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function direct(rep: number): Promise<{ wall: number; work: ReturnType<typeof trainerWork> }> {
  const runId = `bench-direct-${Date.now()}-${rep}`;
  const paths = runPaths(state, runId);
  mkdirSync(paths.logDir, { recursive: true });
  writeFileSync(paths.trainerConfig, toYaml(loaded.config.trainer));
  const backend = getBackend('builtin');
  const d = backend.data({ config: loaded.config, repoRoot: REPO_ROOT, stateDir: state, paths });
  const m = backend.model({ config: loaded.config, repoRoot: REPO_ROOT, stateDir: state, paths });
  const spec = backend.launch(
    { config: loaded.config, repoRoot: REPO_ROOT, stateDir: state, paths, model: { modelDir: m.dir, fingerprint: '' }, data: { dataDir: d.dir, train: d.train, validation: d.validation, manifest: d.manifest } },
    loaded.config.trainer.grpo.max_num_steps,
  );
  const t0 = performance.now();
  // Started the way the pipeline starts it (its own session and process group, output to a log
  // file), so that only the pipeline differs. Left in the benchmark's own session, the same trainer
  // ran 5-10 % slower per step with identical work (docs/benchmarks.md), probably because Linux's
  // autogroup scheduling makes each session a CPU scheduling group of its own.
  const { code } = await spawnToLog(spec, join(paths.logDir, 'trainer.log')).exit;
  if (code !== 0) throw new Error(`direct trainer exited ${code} (see ${join(paths.logDir, 'trainer.log')})`);
  const wall = (performance.now() - t0) / 1000;
  const work = trainerWork(paths.logDir);
  rmSync(paths.runDir, { recursive: true, force: true });
  return { wall, work };
}

/**
 * What the trainer did, from its own metrics: the same config and seed should give the same
 * tokens on both sides, so a difference in wall time with equal work is the machine or the pipeline.
 */
function trainerWork(logDir: string): { generatedTokens: number; stepSeconds: number; validationSeconds: number } {
  let generatedTokens = 0;
  let stepSeconds = 0;
  let validationSeconds = 0;
  const file = join(logDir, 'metrics.jsonl');
  if (!existsSync(file)) return { generatedTokens, stepSeconds, validationSeconds };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { kind: string; metrics?: Record<string, number> } & Record<string, unknown>;
    const m = (r.metrics ?? r) as Record<string, number>;
    if (r.kind === 'train') {
      generatedTokens += Number(m['train/generated_tokens'] ?? 0);
      stepSeconds += Number(m['timing/train/total_step_time'] ?? 0);
    } else if (r.kind === 'validation') validationSeconds += Number(m['timing/validation/total_validation_time'] ?? 0);
  }
  const round = (x: number) => Number(x.toFixed(2));
  return { generatedTokens: round(generatedTokens), stepSeconds: round(stepSeconds), validationSeconds: round(validationSeconds) };
}

const port = await freeLocalPort();
const server = await startDevServer({ state, port, headless: true, dbFile: null, stdio: 'ignore' });
const address = `127.0.0.1:${port}`;
const connection = await Connection.connect({ address });
const client = new Client({ connection });
const worker = spawn(GRPO_BIN, ['worker'], { env: workerSpawnEnv({ ...process.env, TEMPORAL_ADDRESS: address, GRPO_LOG_FORMAT: 'json', GRPO_LOG_LEVEL: 'warn' }), stdio: 'ignore' });
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssKb(worker.pid!))), 200);
const results: { rep: number; order: string; directSeconds: number; pipelineSeconds: number; trainerStarts: number; stageSeconds: Record<string, number>; directWork: ReturnType<typeof trainerWork>; pipelineWork: ReturnType<typeof trainerWork> }[] = [];
let idleRss: number;
try {
  // Wait for the worker to poll.
  for (let i = 0; i < 240; i++) {
    const r = await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: TASK_QUEUE }, taskQueueType: 1 });
    if (r.pollers?.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  idleRss = rssKb(worker.pid!);
  // Warm-up: make sure data/model caches exist so both sides measure training only.
  await client.workflow.execute('trainingRun', { taskQueue: TASK_QUEUE, workflowId: `bench-warmup-${Date.now()}`, args: [{ config: { ...loaded.config, trainer: { ...loaded.config.trainer, grpo: { ...loaded.config.trainer.grpo, max_num_steps: 1 } } } }] });
  const viaPipeline = async (rep: number) => {
    const runId = `bench-pipeline-${Date.now()}-${rep}`;
    const t0 = performance.now();
    const handle = await client.workflow.start('trainingRun', { taskQueue: TASK_QUEUE, workflowId: runId, args: [{ config: loaded.config, runId }] });
    await handle.result();
    return { runId, handle, wall: (performance.now() - t0) / 1000 };
  };
  for (let rep = 0; rep < Number(values.reps); rep++) {
    // Alternate which side goes first, so a drift of the machine's speed does not favour one side.
    let d: Awaited<ReturnType<typeof direct>>;
    let p: Awaited<ReturnType<typeof viaPipeline>>;
    if (rep % 2 === 0) {
      d = await direct(rep);
      p = await viaPipeline(rep);
    } else {
      p = await viaPipeline(rep);
      d = await direct(rep);
    }
    const { runId, handle } = p;
    const directSeconds = d.wall;
    const pipelineSeconds = p.wall;
    // Where the pipeline's time went, stage by stage (from the finished run's status query).
    const status = await handle.query<RunStatus>('status');
    const stageSeconds: Record<string, number> = {};
    for (const st of status.stages)
      if (st.startedAt && st.endedAt) stageSeconds[st.name] = Number(((Date.parse(st.endedAt) - Date.parse(st.startedAt)) / 1000).toFixed(2));
    const trainerLog = readFileSync(join(runPaths(state, runId).logDir, 'trainer.log'), 'utf8');
    const trainerStarts = (trainerLog.match(/\[grpo\] training running from step/g) ?? []).length;
    const pipelineWork = trainerWork(runPaths(state, runId).logDir);
    rmSync(runPaths(state, runId).runDir, { recursive: true, force: true });
    results.push({ rep, order: rep % 2 === 0 ? 'direct first' : 'pipeline first', directSeconds, pipelineSeconds, trainerStarts, stageSeconds, directWork: d.work, pipelineWork });
  }
} finally {
  clearInterval(sampler);
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  await connection.close();
  server.kill('SIGTERM');
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const d = mean(results.map((r) => r.directSeconds));
const p = mean(results.map((r) => r.pipelineSeconds));
const out = {
  config: 'configs/builtin-cpu.yaml',
  overrides: sets,
  steps: loaded.config.trainer.grpo.max_num_steps,
  segments: Math.ceil(loaded.config.trainer.grpo.max_num_steps / loaded.config.run.segment_steps),
  segmentHandoffTimeoutS: loaded.config.run.segment_handoff_timeout_s,
  reps: results,
  directSeconds: Number(d.toFixed(2)),
  pipelineSeconds: Number(p.toFixed(2)),
  overheadSeconds: Number((p - d).toFixed(2)),
  overheadPercent: Number((((p - d) / d) * 100).toFixed(2)),
  overheadTargetPercent: 2,
  workerRssMbIdle: Number((idleRss / 1024).toFixed(1)),
  workerRssMbPeak: Number((peakRss / 1024).toFixed(1)),
  workerRssTargetMb: 200,
};
console.log(JSON.stringify(out, null, 2));
process.exit(0);
