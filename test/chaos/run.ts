/**
 * Chaos suite: real faults against real training runs (built-in backend, tiny random-weights
 * model, real Temporal dev server, real Ray, real trainer processes), loopback only.
 *
 *   npm run chaos                      # all seven scenarios once
 *   npm run chaos -- --repeat 3        # three rounds
 *   npm run chaos -- --only worker-kill,ray-head-kill
 *
 * After each scenario it checks the invariants (test/chaos/invariants.ts), prints them with the
 * time to recover and the steps lost, and writes everything to <state>/chaos/chaos-<time>.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { TASK_QUEUE, WORKFLOW_TYPE, type Summary, type TrainingRunInput } from '../../src/common/types.js';
import { ROOT, STATE } from '../helpers.js';
import { DevServer, TrainerMonitor, WorkerProcess, freePort, readJsonLines, sleep, waitFor } from './harness.js';
import { checkInvariants, type Check } from './invariants.js';
import { OOM_SHAPE, SCENARIOS, type Calibration, type Scenario, type ScenarioContext } from './scenarios.js';

const CONFIG = 'configs/builtin-cpu.yaml';
const SAVE_PERIOD = 2;
const TOTAL_STEPS = 8;
const KEEP_TOP_K = 3;
/** Small and fast, but with more checkpoints than top-k + newest, so retention really deletes. */
const BASE_SETS = [
  'model.source=tiny-random',
  `trainer.grpo.max_num_steps=${TOTAL_STEPS}`,
  `trainer.checkpointing.save_period=${SAVE_PERIOD}`,
  `trainer.grpo.val_period=${SAVE_PERIOD}`,
  `trainer.checkpointing.keep_top_k=${KEEP_TOP_K}`,
  'run.segment_steps=4',
  'run.heartbeat_timeout_s=10',
  'eval.limit=2',
  'trainer.grpo.max_val_samples=2',
  'trainer.grpo.val_batch_size=2',
  'recovery.backoff.initial_s=2',
];
const PYTHON = join(STATE, 'envs', 'builtin', 'bin', 'python');
const TRAINER_ENV = { PYTHONPATH: join(ROOT, 'trainer'), HF_HUB_OFFLINE: '1', PYTHONUNBUFFERED: '1' };

interface Result {
  round: number;
  scenario: string;
  fault: string;
  runId: string;
  passed: boolean;
  checks: Check[];
  recoverySeconds: number | null;
  /** Of the recovery: new trainer launch to training under way (imports, Ray Train workers, model load). */
  trainerStartSeconds: number | null;
  stepsLost: number;
  ledger: Summary['ledger'];
  wallSeconds: number;
  error?: string;
}

function runPy(args: string[], logFile: string): void {
  const r = spawnSync(PYTHON, ['-m', 'grpo_trainer', ...args], { cwd: ROOT, env: { ...process.env, ...TRAINER_ENV }, encoding: 'utf8' });
  writeFileSync(logFile, `${r.stdout}\n${r.stderr}`, { flag: 'a' });
  if (r.status !== 0) throw new Error(`python -m grpo_trainer ${args[0]} failed (exit ${r.status}); see ${logFile}`);
}

/** The model and data every scenario uses (the pipeline would make the same on its first run). */
function ensureAssets(dir: string): { model: string; train: string; validation: string } {
  const model = join(STATE, 'models', 'tiny-random');
  const data = join(STATE, 'data', 'builtin-val0.2');
  if (!existsSync(join(model, 'config.json'))) runPy(['prepare-model', '--tiny-random', '--out', model], join(dir, 'assets.log'));
  if (!existsSync(join(data, 'split_manifest.json'))) runPy(['prepare-data', '--out-dir', data, '--val-fraction', '0.2'], join(dir, 'assets.log'));
  return { model, train: join(data, 'train.jsonl'), validation: join(data, 'validation.jsonl') };
}

/**
 * Size the address-space limit of the OOM scenario from two real runs: peak virtual memory at
 * micro batch 8 and at 4; the limit sits halfway, so 8 fails and 4 fits.
 */
function calibrate(dir: string, assets: ReturnType<typeof ensureAssets>): Calibration {
  const cfg = loadConfigFile(join(ROOT, CONFIG), [...BASE_SETS, 'ray.enabled=false', ...OOM_SHAPE]).config;
  const yamlPath = join(dir, 'calibration-trainer.yaml');
  writeFileSync(yamlPath, toYaml(cfg.trainer));
  const peak = (mb: number): number => {
    const out = join(dir, `calibration-mb${mb}`);
    runPy(
      [
        'train', '--config', yamlPath, `policy.model_name=${assets.model}`, `data.train.data_path=${assets.train}`,
        `data.validation.data_path=${assets.validation}`, `checkpointing.checkpoint_dir=${out}/ckpt`, `logger.log_dir=${out}/logs`,
        'grpo.max_num_steps=1', 'checkpointing.enabled=false', `policy.train_micro_batch_size=${mb}`,
      ],
      join(dir, 'calibration.log'),
    );
    const rec = readJsonLines(join(out, 'logs', 'metrics.jsonl')).find((r) => r.kind === 'train');
    const v = rec?.['memory/vm_peak_mb'];
    if (typeof v !== 'number') throw new Error(`calibration at micro batch ${mb}: no memory/vm_peak_mb in metrics`);
    return v;
  };
  const full = peak(8);
  const half = peak(4);
  if (full - half < 200) throw new Error(`calibration: peak memory at micro batch 8 (${full} MiB) and 4 (${half} MiB) are too close for a limit between them`);
  return { addressSpaceMb: Math.round((full + half) / 2), peakFullMb: Math.round(full), peakHalfMb: Math.round(half) };
}

async function startHub(dir: string, model: string): Promise<{ endpoint: string; log: string; stop: () => void }> {
  const portFile = join(dir, `hub-${Date.now()}.port`);
  const log = join(dir, `hub-${Date.now()}.jsonl`);
  writeFileSync(log, '');
  const child = spawn(PYTHON, [join(ROOT, 'test', 'doubles', 'hub-server-TEST-DOUBLE.py'), '--model-dir', model, '--port-file', portFile, '--log', log, '--storm-seconds', '8', '--retry-after', '2'], {
    stdio: 'ignore',
  });
  const port = await waitFor('the Hub test double', () => (existsSync(portFile) ? readFileSync(portFile, 'utf8').trim() : null), 30_000);
  return { endpoint: `http://127.0.0.1:${port}`, log, stop: () => child.kill('SIGKILL') };
}

async function runScenario(sc: Scenario, round: number, server: DevServer, dir: string, assets: ReturnType<typeof ensureAssets>, calib: Calibration | null): Promise<Result> {
  const runId = `chaos-${sc.name}-r${round}-${Date.now().toString(36)}`;
  const runDir = join(STATE, 'runs', runId);
  const checkpointDir = join(runDir, 'checkpoints');
  const started = Date.now();
  const hub = sc.needsHub ? await startHub(dir, assets.model) : null;
  // Hub downloads go through the Hugging Face cache: a scenario's own HF_HOME, not the user's.
  const workerEnv: NodeJS.ProcessEnv = { TEMPORAL_ADDRESS: server.address, GRPO_STATE_DIR: STATE, ...(hub ? { HF_ENDPOINT: hub.endpoint, HF_HOME: join(dir, `hf-home-${runId}`) } : {}) };
  let worker = new WorkerProcess(workerEnv, join(dir, `worker-${runId}.log`));
  worker.start();
  const monitor = new TrainerMonitor(checkpointDir);
  monitor.start();
  const ctx: ScenarioContext = {
    runDir,
    checkpointDir,
    server,
    worker: () => worker,
    replaceWorker: () => {
      worker = new WorkerProcess(workerEnv, join(dir, `worker-${runId}-2.log`));
      worker.start();
    },
    python: PYTHON,
    hubLog: hub?.log ?? null,
  };
  const result: Result = { round, scenario: sc.name, fault: sc.fault, runId, passed: false, checks: [], recoverySeconds: null, trainerStartSeconds: null, stepsLost: 0, ledger: [], wallSeconds: 0 };
  let connection: Connection | null = null;
  try {
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const input: TrainingRunInput = { configPath: CONFIG, set: [...BASE_SETS, ...sc.sets(calib!)], runId };
    const handle = await client.workflow.start(WORKFLOW_TYPE, { taskQueue: TASK_QUEUE, workflowId: runId, args: [input] });
    const faultAt = await sc.inject(ctx);
    let summary: Summary | null = null;
    const deadline = Date.now() + 15 * 60_000;
    // One result() call at a time: a call left behind keeps retrying on its own and would outlive
    // the connection (and crash the suite when it is closed).
    let pending: Promise<{ ok: true; s: Summary } | { ok: false; e: unknown }> | null = null;
    while (!summary) {
      if (Date.now() > deadline) {
        await handle.terminate('chaos suite: the run did not finish within 15 minutes').catch(() => undefined);
        await Promise.race([pending, sleep(30_000)]);
        throw new Error('the run did not finish within 15 minutes');
      }
      pending ??= handle.result().then(
        (s) => ({ ok: true as const, s: s as Summary }),
        (e: unknown) => ({ ok: false as const, e }),
      );
      const r = await Promise.race([pending, sleep(10_000).then(() => null)]);
      if (!r) continue;
      pending = null;
      if (r.ok) summary = r.s;
      // The workflow failed (summary.json still tells what happened) or the server is away for now.
      else if (existsSync(join(runDir, 'summary.json')) && !String((r.e as Error).message).includes('UNAVAILABLE')) summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as Summary;
      else await sleep(1000);
    }
    monitor.stop();
    result.ledger = summary.ledger;
    result.stepsLost = summary.ledger.reduce((a, e) => a + (e.stepsLost ?? 0), 0);
    const ends = summary.ledger.filter((e) => e.recoverySeconds !== null).map((e) => Date.parse(e.time) + e.recoverySeconds! * 1000);
    // Fault → training running again (the resumed trainer has loaded the model and continues), or
    // the failed stage succeeding. A fault present from the start counts from the first failure.
    const from = faultAt ?? Math.min(...summary.ledger.map((e) => Date.parse(e.time)));
    if (ends.length) result.recoverySeconds = Math.round((Math.max(...ends) - from) / 100) / 10;
    const starts = summary.ledger.map((e) => e.trainerStartSeconds).filter((v): v is number => typeof v === 'number');
    if (starts.length) result.trainerStartSeconds = Math.max(...starts);
    result.checks = await checkInvariants({
      summary,
      runDir,
      savePeriod: SAVE_PERIOD,
      keepTopK: KEEP_TOP_K,
      totalSteps: TOTAL_STEPS,
      monitor,
      expectTypes: sc.expectTypes,
      allowTypes: sc.allowTypes,
      extra: sc.extraChecks?.(ctx),
    });
    result.passed = result.checks.every((c) => c.ok);
  } catch (e) {
    result.error = (e as Error).stack ?? String(e);
  } finally {
    monitor.stop();
    await worker.stop();
    hub?.stop();
    await connection?.close().catch(() => undefined);
    result.wallSeconds = Math.round((Date.now() - started) / 1000);
  }
  return result;
}

const sec = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : `${v}s`);

function printResult(r: Result): void {
  const mark = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  process.stdout.write(`\n[round ${r.round}] ${r.scenario}: ${mark(r.passed)}  (${r.fault}; run ${r.runId}, ${r.wallSeconds}s)\n`);
  for (const c of r.checks) process.stdout.write(`    ${mark(c.ok)}  ${c.name}: ${c.detail}\n`);
  for (const e of r.ledger) process.stdout.write(`    ledger: ${e.type} (${e.rule}) at ${e.stage}: ${e.action}; steps lost ${e.stepsLost ?? 'n/a'}, recovery ${sec(e.recoverySeconds)}\n`);
  process.stdout.write(`    time to recover: ${sec(r.recoverySeconds)} (of which a new trainer's start, incl. model load: ${sec(r.trainerStartSeconds)}), steps lost: ${r.stepsLost}\n`);
  if (r.error) process.stdout.write(`    ERROR: ${r.error}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { repeat: { type: 'string', default: '1' }, only: { type: 'string' } } });
  const rounds = Number(values.repeat);
  const only = values.only?.split(',').map((s) => s.trim());
  const scenarios = SCENARIOS.filter((s) => !only || only.includes(s.name));
  if (only && scenarios.length !== only.length) throw new Error(`unknown scenario in --only (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'grpo-chaos-'));
  process.stdout.write(`[chaos] ${scenarios.length} scenario(s) x ${rounds} round(s); scratch dir ${dir}; state ${STATE}\n`);
  const assets = ensureAssets(dir);
  let calib: Calibration | null = null;
  if (scenarios.some((s) => s.needsCalibration)) {
    calib = calibrate(dir, assets);
    process.stdout.write(`[chaos] OOM calibration: peak ${calib.peakFullMb} MiB at micro batch 8, ${calib.peakHalfMb} MiB at 4 -> RLIMIT_AS ${calib.addressSpaceMb} MiB\n`);
  }
  const server = new DevServer(await freePort(), join(dir, 'temporal.db'), join(dir, 'temporal.log'));
  await server.start();
  const results: Result[] = [];
  try {
    for (let round = 1; round <= rounds; round++)
      for (const sc of scenarios) {
        const r = await runScenario(sc, round, server, dir, assets, calib);
        printResult(r);
        results.push(r);
      }
  } finally {
    await server.stop();
  }
  const out = join(STATE, 'chaos');
  mkdirSync(out, { recursive: true });
  const file = join(out, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ rounds, calibration: calib, results }, null, 2));
  process.stdout.write('\nscenario                   round  result  recovery_s  trainer_start_s  steps_lost\n');
  for (const r of results)
    process.stdout.write(
      `${r.scenario.padEnd(26)} ${String(r.round).padStart(5)}  ${(r.passed ? 'PASS' : 'FAIL').padEnd(6)}  ${String(r.recoverySeconds ?? 'n/a').padStart(10)}  ${String(r.trainerStartSeconds ?? 'n/a').padStart(15)}  ${String(r.stepsLost).padStart(10)}\n`,
    );
  process.stdout.write(`\n[chaos] ${results.filter((r) => r.passed).length}/${results.length} passed; report ${file}\n`);
  return results.every((r) => r.passed) ? 0 : 1;
}

process.exitCode = await main();
