/**
 * Whole `trainingRun`s with backend nemo_rl against a real dev server and real `grpo worker`
 * processes, through the NeMo RL TEST DOUBLE (test/doubles/nemo-rl-TEST-DOUBLE: the real command
 * line, Hydra override rules, stdout, checkpoint layout, retention, resume, TensorBoard and failure
 * texts) in a git checkout built with real `uv`, and a Hub TEST DOUBLE for the model download.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ROOT, uniq } from '../helpers.js';
import { waitFor } from '../chaos/harness.js';
import type { Checkout } from '../support/nemo-rl.js';
import { NemoRlStack } from '../support/nemo-rl-stack.js';
import type { RunStatus, Summary } from '../../src/common/types.js';

const CONFIG = join(ROOT, 'configs', 'nemo-rl-nemotron-nano-9b.yaml');
const MODEL = 'test-org/nemotron-tiny';

const stack = new NemoRlStack('grpo-nrl');
let env: TestWorkflowEnvironment;
let checkout: Checkout;
let state: string;
const taskQueue = stack.taskQueue;

before(async () => {
  await stack.setup();
  ({ env, checkout, state } = stack);
});
after(() => stack.teardown());

const stopWorkers = () => stack.stopWorkers();
const startWorker = (extra: NodeJS.ProcessEnv = {}) => stack.startWorker(extra);

const BASE = [
  'eval.baseline=true',
  'eval.final=true',
  'eval.limit=4',
  `model.name=${MODEL}`,
  'trainer.policy.model_name=' + MODEL,
  'trainer.grpo.num_prompts_per_step=2',
  'trainer.grpo.val_period=2',
  'trainer.checkpointing.save_period=2',
  'trainer.checkpointing.keep_top_k=1',
  'trainer.logger.wandb_enabled=false',
  'run.heartbeat_timeout_s=10',
  'recovery.backoff.initial_s=1',
];

function start(id: string, sets: string[] = []) {
  return env.client.workflow.start('trainingRun', {
    taskQueue,
    workflowId: id,
    args: [{ configPath: CONFIG, runId: id, set: [`nemo_rl.repo_dir=${checkout.dir}`, ...BASE, ...sets] }],
  });
}

const runDir = (id: string) => join(state, 'runs', id);
const trainerLog = (id: string) => readFileSync(join(runDir(id), 'logs', 'trainer.log'), 'utf8');

test('a whole run: env (uv sync), model (hf download + tokenizer edits), data check, training, baseline and final evaluation of the best checkpoint', { timeout: 10 * 60_000 }, async () => {
  await stopWorkers();
  const w = startWorker();
  const id = uniq('nrl-run');
  const h = await start(id);
  const summary = (await h.result()) as Summary;
  await w.stop();
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  // 12 training rows / 2 prompts per step, one epoch: NeMo RL's own "Step N/6" gives the real length.
  assert.equal(summary.steps.total, 6);
  assert.equal(summary.steps.completed, 6);
  const status = (await h.query<RunStatus>('status').catch(() => null)) ?? null;
  if (status) assert.equal(status.totalSteps, 6);
  // The run's own checkpoint dir, NeMo RL's retention (top 1 by val:accuracy among periodic saves, plus the newest).
  const ckpts = readdirSync(join(runDir(id), 'checkpoints')).filter((n) => /^step_\d+$/.test(n)).sort();
  assert.ok(ckpts.includes('step_6'), ckpts.join(','));
  assert.ok(ckpts.length <= 2, `retention left ${ckpts}`);
  assert.ok(summary.best && summary.best.metric !== null, 'the best checkpoint carries val:accuracy');
  assert.match(trainerLog(id), new RegExp(`checkpointing\\.checkpoint_dir=${runDir(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/checkpoints`));
  assert.match(trainerLog(id), /logger\.tensorboard_enabled=true/);
  // Baseline and final evaluation through NeMo RL's trajectory collection; the final one on the converted best checkpoint.
  assert.equal(typeof summary.baselineAccuracy, 'number');
  assert.equal(typeof summary.finalAccuracy, 'number');
  assert.equal(summary.finalModel, summary.best!.dir);
  assert.ok(existsSync(join(runDir(id), 'eval', 'hf', `step_${summary.best!.step}`, 'config.json')), 'the checkpoint was converted to HF');
  assert.ok(summary.finalAccuracy! >= summary.baselineAccuracy!, `a trained checkpoint solves at least as much (${summary.baselineAccuracy} -> ${summary.finalAccuracy})`);
  // Metrics come from NeMo RL's TensorBoard events.
  const metrics = readFileSync(join(runDir(id), 'logs', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(metrics.some((m) => m.kind === 'train' && m.step === 6 && typeof m['train/reward'] === 'number'), 'train/reward at step 6 from TensorBoard');
  assert.ok(metrics.some((m) => m.kind === 'validation' && m.step === 0 && typeof m['validation/accuracy'] === 'number'));
  // The model went into HF_HOME through `hf download`, with the tutorial's two chat-template edits.
  const snapshots = join(checkout.dir, '.cache', 'hub', `models--${MODEL.replace('/', '--')}`, 'snapshots');
  const tokenizer = JSON.parse(readFileSync(join(snapshots, readdirSync(snapshots)[0]!, 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
  assert.match(tokenizer.chat_template, /set enable_thinking = false/);
  assert.doesNotMatch(tokenizer.chat_template, /messages\[-1\]\['role'\] == 'assistant'/);
  // The env stage ran uv sync --locked in the checkout.
  assert.ok(existsSync(join(checkout.dir, '.venv', 'bin', 'python')));

  // A second run of the same config never sees the first one's checkpoints.
  const w2 = startWorker();
  const id2 = uniq('nrl-run2');
  const s2 = (await (await start(id2, ['eval.baseline=false', 'eval.final=false'])).result()) as Summary;
  await w2.stop();
  assert.equal(s2.state, 'completed', JSON.stringify(s2.failures));
  assert.match(trainerLog(id2), /Step 1\/6/, 'the second run starts at step 1');
  assert.doesNotMatch(trainerLog(id2), /resuming at step/);
  assert.doesNotMatch(trainerLog(id2), new RegExp(id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
});

test("an OOM's config change reaches the relaunch as a Hydra override", { timeout: 8 * 60_000 }, async () => {
  await stopWorkers();
  const w = startWorker({ FAKE_NRL_OOM_UNLESS: 'policy.generation.vllm_cfg.gpu_memory_utilization=0.7' });
  const id = uniq('nrl-oom');
  const summary = (await (await start(id, ['eval.baseline=false', 'eval.final=false'])).result()) as Summary;
  await w.stop();
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  assert.deepEqual(summary.ledger.map((e) => e.type), ['OutOfMemory']);
  assert.deepEqual(summary.configChanges, ['policy.generation.vllm_cfg.gpu_memory_utilization=0.7']);
  const launches = trainerLog(id).split('\n').filter((l) => l.includes('uv run python examples/nemo_gym/run_grpo_nemo_gym.py'));
  assert.equal(launches.length, 2, 'two launches');
  assert.doesNotMatch(launches[0]!, /gpu_memory_utilization=0\.7/);
  assert.match(launches[1]!, / policy\.generation\.vllm_cfg\.gpu_memory_utilization=0\.7/);
});

test('a worker killed mid-run: the next attempt stops the orphaned launch and NeMo RL resumes from its newest checkpoint', { timeout: 8 * 60_000 }, async () => {
  await stopWorkers();
  const slow = { FAKE_NRL_STEP_SECONDS: '6' };
  const w = startWorker(slow);
  const id = uniq('nrl-kill');
  const h = await start(id, ['eval.baseline=false', 'eval.final=false']);
  await waitFor('step 3 of the first launch', () => existsSync(join(runDir(id), 'logs', 'trainer.log')) && /Step 3\/6/.test(trainerLog(id)), 240_000, 200);
  w.kill9();
  startWorker(slow);
  const summary = (await h.result()) as Summary;
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  assert.equal(summary.steps.completed, 6);
  assert.ok(summary.ledger.some((e) => e.type === 'WorkerLost'), JSON.stringify(summary.ledger));
  const log = trainerLog(id);
  assert.equal(log.split('\n').filter((l) => l.includes('uv run python examples/nemo_gym/run_grpo_nemo_gym.py')).length, 2);
  // The relaunch resumed from a checkpoint saved by the first launch instead of starting over.
  const second = log.slice(log.lastIndexOf('uv run python examples/nemo_gym/run_grpo_nemo_gym.py'));
  assert.doesNotMatch(second, /Step 1\/6/);
  assert.match(second, /resuming at step [2-6]/);
});

test("NeMo RL's config errors fail the run at once, naming the key (InvalidConfig, not retried)", { timeout: 6 * 60_000 }, async () => {
  await stopWorkers();
  const w = startWorker();
  const id = uniq('nrl-config');
  // `+key` appends, and the recipe already has grpo.seed: Hydra refuses it like NeMo RL does.
  const h = await start(id, ['eval.baseline=false', 'eval.final=false', 'nemo_rl.overrides=["+grpo.seed=7"]']);
  await assert.rejects(h.result());
  await w.stop();
  const summary = JSON.parse(readFileSync(join(runDir(id), 'summary.json'), 'utf8')) as Summary;
  assert.equal(summary.state, 'failed');
  const f = summary.failures.at(-1)!;
  assert.equal(f.type, 'InvalidConfig');
  assert.match(f.message, /grpo\.seed/);
  assert.equal(summary.ledger.filter((e) => e.type === 'InvalidConfig').length, 1, 'no retry');
  assert.match(summary.ledger[0]!.action, /gave up: InvalidConfig cannot be fixed by retrying/);
});

test('a trainer silent for run.hang_timeout_min is stopped as hung and relaunched from its newest checkpoint', { timeout: 6 * 60_000 }, async () => {
  await stopWorkers();
  const w = startWorker({ FAKE_NRL_FAIL_AT_STEP: '3', FAKE_NRL_FAIL_WITH: 'hang', FAKE_NRL_FAIL_ONCE: '1' });
  const id = uniq('nrl-hang');
  const summary = (await (await start(id, ['eval.baseline=false', 'eval.final=false', 'run.hang_timeout_min=0.15'])).result()) as Summary;
  await w.stop();
  assert.equal(summary.state, 'completed', JSON.stringify(summary.failures));
  assert.deepEqual(summary.ledger.map((e) => e.type), ['Hung']);
  assert.match(summary.ledger[0]!.action, /stopped the silent trainer; resuming from the newest checkpoint/);
  assert.equal(summary.ledger[0]!.resumedFromStep, 2);
  assert.equal(summary.steps.completed, 6);
});
