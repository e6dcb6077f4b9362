/**
 * Acceptance end-to-end test: the whole `trainingRun` workflow with the REAL built-in trainer
 * (trainer/, `python -m grpo_trainer`) and a tiny random-weights model of the same architecture,
 * against a real dev server, driven through the `grpo` CLI like a user: env (reused), data, model,
 * Ray head, baseline eval, supervised warm start and its evaluation, 2 segments of GRPO from the
 * warmed model with checkpoints, bookkeeping, final eval of the best checkpoint, summary, cleanup.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, STATE, cli, uniq } from '../helpers.js';
import { startPipeline, type Pipeline } from '../support/pipeline.js';
import type { RunStatus, Summary } from '../../src/common/types.js';
import { isAlive, sessionMembers } from '../../src/process/proc.js';
import { rayTokenPath } from '../../src/ray/head.js';
import { clusterPids, listeningSockets, type Listener } from '../support/sockets.js';

let pipeline: Pipeline;
const runId = uniq('e2e');
let warmDir: string | null = null;

before(async () => {
  pipeline = await startPipeline('real', 'grpo-e2e');
});
after(async () => {
  await pipeline.stop();
  rmSync(join(STATE, 'runs', runId), { recursive: true, force: true });
  if (warmDir) rmSync(warmDir, { recursive: true, force: true });
});

test('end to end with the real trainer and a tiny random model', { timeout: 15 * 60_000 }, async () => {
  assert.ok(existsSync(join(ROOT, 'trainer', 'grpo_trainer', '__main__.py')), 'real trainer present');
  // Start through the workflow client with the same input `grpo run` sends, then follow via the CLI.
  const set = [
    'model.source=tiny-random',
    'eval.limit=3',
    'trainer.grpo.max_num_steps=4',
    'run.segment_steps=2',
    'trainer.grpo.val_period=2',
    'trainer.checkpointing.save_period=2',
    'trainer.checkpointing.keep_top_k=1',
    'trainer.grpo.max_val_samples=3',
    'trainer.grpo.num_prompts_per_step=1',
    'trainer.grpo.num_generations_per_prompt=2',
    'trainer.policy.generation.max_new_tokens=16',
    'trainer.policy.train_micro_batch_size=2',
    'trainer.warm_start.enabled=true',
    'trainer.warm_start.max_examples=12',
    'trainer.warm_start.epochs=1',
    'trainer.warm_start.batch_size=4',
    'trainer.warm_start.gradient_accumulation_steps=1',
    'trainer.warm_start.trainable_layers=null',
  ];
  const h = await pipeline.start({ configPath: join(ROOT, 'configs', 'builtin-cpu.yaml'), runId, set }, runId);
  // Live status while it runs.
  let sawTrain = false;
  let raySeen: { pid: number; tempDir: string } | null = null;
  let token: string | null = null;
  let trainingListeners: Listener[] | null = null;
  const tokenFile = rayTokenPath(join(STATE, 'runs', runId));
  const pidFile = join(STATE, 'runs', runId, 'checkpoints', 'trainer.pid');
  for (;;) {
    const d = await h.describe();
    if (d.status.name !== 'RUNNING') break;
    const s = await h.query<RunStatus>('status').catch(() => null);
    if (s?.stage === 'train') sawTrain = true;
    const rayJson = join(STATE, 'runs', runId, 'ray.json');
    if (!raySeen && existsSync(rayJson)) raySeen = JSON.parse(readFileSync(rayJson, 'utf8'));
    if (!token && existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8');
    // While the trainer trains through Ray Train: what do the run's processes listen on?
    if (!trainingListeners && raySeen && s?.stage === 'train' && existsSync(pidFile)) {
      const trainerPid = (JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }).pid;
      if (trainerPid > 0) trainingListeners = listeningSockets([...clusterPids(raySeen), ...sessionMembers(trainerPid)]);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  const summary = (await h.result()) as Summary;
  warmDir = summary.warmStart?.dir ?? null;
  assert.ok(sawTrain, 'status query showed the train stage');
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  assert.equal(summary.steps.completed, 4);
  assert.equal(typeof summary.baselineAccuracy, 'number');
  assert.equal(typeof summary.finalAccuracy, 'number');
  assert.ok(summary.best, 'a best checkpoint');
  const ckdir = join(STATE, 'runs', runId, 'checkpoints');
  const steps = readdirSync(ckdir).filter((n) => /^step_\d+$/.test(n));
  assert.ok(steps.includes('step_4'), `newest kept: ${steps}`);
  assert.ok(steps.length <= 2, `top-1 + newest: ${steps}`);
  assert.ok(!readdirSync(ckdir).some((n) => n.startsWith('tmp_step_')));
  const metrics = readFileSync(join(STATE, 'runs', runId, 'logs', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(metrics.some((m) => m.kind === 'train' && m.step === 4));
  assert.ok(metrics.some((m) => m.kind === 'validation'));
  // Segment handoff: both segments were served by one trainer process (one start, one continuation).
  const trainerLog = readFileSync(join(STATE, 'runs', runId, 'logs', 'trainer.log'), 'utf8');
  assert.equal(trainerLog.match(/\[grpo\] training running from step/g)?.length, 1, 'one trainer start for two segments');
  assert.match(trainerLog, /continuing to step 4 in the same process/);
  // Ray: started for the run and stopped at the end.
  assert.ok(raySeen, 'a Ray head was started');
  assert.ok(!isAlive(raySeen!.pid), 'the Ray head was stopped');
  // Ray with token authentication, on loopback only; the token never left its file, which cleanup removed.
  assert.match(token ?? '', /^[0-9a-f]{64}$/, 'the run had a Ray token');
  assert.ok(trainingListeners && trainingListeners.length >= 3, `listeners seen during training: ${JSON.stringify(trainingListeners)}`);
  assert.deepEqual(trainingListeners!.filter((l) => !l.loopback), [], 'no process of the run listens on a non-loopback address');
  assert.ok(!existsSync(tokenFile), 'the token file was removed at cleanup');
  const history = JSON.stringify(await h.fetchHistory());
  assert.ok(!history.includes(token!), 'the token is not in the workflow history');
  const grep = spawnSync('grep', ['-rl', token!, join(STATE, 'runs', runId)], { encoding: 'utf8' });
  assert.equal(grep.stdout.trim(), '', `the token is in ${grep.stdout}`);
  // The CLI reads the finished run.
  const st = await cli(['status', runId, '--json'], { env: { TEMPORAL_ADDRESS: pipeline.env.connection.options.address } });
  assert.equal(st.code, 0, st.out);
  const js = JSON.parse(st.stdout) as RunStatus & { workflowStatus: string };
  assert.equal(js.workflowStatus, 'COMPLETED');
  assert.equal(js.state, 'completed');
  const text = readFileSync(join(STATE, 'runs', runId, 'summary.txt'), 'utf8');
  assert.match(text, /Validation accuracy \(95% CI, 3 tasks\): baseline \d\.\d{3} \[[0-9.]+, [0-9.]+\] -> warm start \d\.\d{3} \[[0-9.]+, [0-9.]+\] -> final \d\.\d{3} \[/);
  assert.match(text, /Warm start: trained on \d+ verified traces of \d+ training tasks/);
  // base -> warm -> GRPO: three evaluations of the same tasks, GRPO started from the warmed model
  const evals = ['baseline', 'warm', 'final'].map((w) => JSON.parse(readFileSync(join(STATE, 'runs', runId, 'eval', `${w}.json`), 'utf8')) as { results: { task_id: unknown }[] });
  const ids = evals.map((e) => e.results.map((r) => JSON.stringify(r.task_id)).join());
  assert.equal(new Set(ids).size, 1, 'every point scored the same tasks');
  assert.equal(evals[0]!.results.length, 3);
  const warmModel = summary.warmStart!.model.modelDir;
  assert.match(trainerLog, new RegExp(`policy\\.model_name=${warmModel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const report = readFileSync(join(STATE, 'runs', runId, 'report', 'report.md'), 'utf8');
  assert.match(report, /\| category \| baseline \| warm start \| final \| difference \|/);
  assert.ok(existsSync(join(STATE, 'runs', runId, 'report', 'evaluation_points.png')));
  assert.match(text, /Retained checkpoints/);
});
