/**
 * `grpo plan` for the NeMo RL backend, pinned (golden files under test/golden, rewritten with
 * GRPO_UPDATE_GOLDEN=1): today's nemo_gym layout on one node, the seed's penguin layout, and two
 * nodes through Slurm. The checkouts are the NeMo RL TEST DOUBLE's, so `key=value` vs `++key=value`
 * is decided from a real recipe file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, ROOT, STATE } from '../helpers.js';
import { makeCheckout, type Checkout } from '../support/nemo-rl.js';

const CONFIG = join(ROOT, 'configs', 'nemo-rl-nemotron-nano-9b.yaml');
const checkouts: Checkout[] = [];
after(() => checkouts.forEach((c) => c.remove()));

/** The plan with the machine-specific paths replaced, so it reads the same everywhere. */
async function plan(checkout: Checkout, sets: string[], runId = 'golden-run'): Promise<string> {
  const r = await cli(['plan', CONFIG, '--run-id', runId, '--set', `nemo_rl.repo_dir=${checkout.dir}`, ...sets.flatMap((s) => ['--set', s])], {
    env: { HF_TOKEN: '', WANDB_API_KEY: '', HF_ENDPOINT: '', GRPO_STATE_DIR: STATE },
  });
  assert.equal(r.code, 0, r.out);
  return r.stdout.split(checkout.dir).join('<RL>').split(STATE).join('<STATE>').split(ROOT).join('<REPO>');
}

function golden(name: string, text: string): void {
  const file = join(ROOT, 'test', 'golden', name);
  if (process.env.GRPO_UPDATE_GOLDEN === '1' || !existsSync(file)) {
    mkdirSync(join(ROOT, 'test', 'golden'), { recursive: true });
    writeFileSync(file, text);
    if (process.env.GRPO_UPDATE_GOLDEN !== '1') assert.fail(`wrote missing golden file ${file}; check it in`);
  }
  assert.equal(text, readFileSync(file, 'utf8'), `plan differs from ${file} (GRPO_UPDATE_GOLDEN=1 rewrites it)`);
}

/** The plan's train stage: from its numbered heading to the next one. */
const trainSection = (p: string) => {
  const start = p.search(/\n\d+\. train/);
  const next = p.slice(start + 1).search(/\n\d+\. /);
  return p.slice(start, next < 0 ? undefined : start + 1 + next);
};

test('nemo_gym layout, one node: the exact launch, every setting as an override of the right form', async () => {
  const c = makeCheckout();
  checkouts.push(c);
  const p = await plan(c, []);
  golden('nemo-rl-plan-nemo-gym-1node.txt', p);
  const t = trainSection(p);
  assert.match(t, /layout: nemo_gym \(examples\/nemo_gym\/run_grpo_nemo_gym\.py/);
  assert.match(t, /uv run python examples\/nemo_gym\/run_grpo_nemo_gym\.py/);
  // Keys the recipe has: plain. The run's own dirs and TensorBoard: the recipe has them too.
  assert.match(t, / checkpointing\.checkpoint_dir=<STATE>\/runs\/golden-run\/checkpoints/);
  assert.match(t, / logger\.log_dir=<STATE>\/runs\/golden-run\/logs\/nemo_rl/);
  assert.match(t, / logger\.tensorboard_enabled=true/);
  assert.match(t, / grpo\.val_period=6/);
  assert.match(t, / cluster\.num_nodes=1/);
  assert.doesNotMatch(t, /sbatch/);
});

test('a key the recipe lacks gets ++, one it has stays plain; extra overrides are respelled the same way', async () => {
  const c = makeCheckout();
  checkouts.push(c);
  const t = trainSection(await plan(c, ['trainer.policy.brand_new_knob=3', 'nemo_rl.overrides=["grpo.seed=7", "policy.generation.vllm_cfg.tool_parser_plugin=/x/parser.py"]']));
  assert.match(t, / \+\+policy\.brand_new_knob=3/);
  assert.match(t, / grpo\.seed=7/);
  assert.doesNotMatch(t, /\+\+grpo\.seed/);
});

test("the seed's penguin layout is found by its file names", async () => {
  const c = makeCheckout({ layout: 'penguin' });
  checkouts.push(c);
  const p = await plan(c, []);
  golden('nemo-rl-plan-penguin-1node.txt', p);
  assert.match(trainSection(p), /uv run python examples\/penguin\/run_grpo_penguin\.py/);
  assert.match(trainSection(p), /CONFIG_PATH=examples\/penguin\/grpo_workplace_assistant_nemotron_nano_v2_9b\.yaml/);
});

test('two nodes go through Slurm: sbatch --nodes=2 ... ray.sub, with cluster.num_nodes=2 in COMMAND', async () => {
  const c = makeCheckout();
  checkouts.push(c);
  const p = await plan(c, ['trainer.cluster.num_nodes=2', 'nemo_rl.slurm.partition=batch']);
  golden('nemo-rl-plan-slurm-2nodes.txt', p);
  const t = trainSection(p);
  assert.match(t, /sbatch --parsable --nodes=2 --gres=gpu:8 --time=4:0:0 --job-name=grpo-golden-run --partition=batch <RL>\/ray\.sub/);
  const command = /COMMAND='([^\n]*)' \\/.exec(t)?.[1] ?? '';
  assert.match(command, /cluster\.num_nodes=2/);
  assert.match(command, /^cd <RL> && /);
  assert.match(t, /CONTAINER=nvcr\.io\/nvidia\/nemo-rl:v0\.4\.0/);
  assert.match(t, /MOUNTS=<RL>:<RL>,<STATE>:<STATE>/);
});

test("two runs' plans use two checkpoint dirs (NeMo RL resumes from whatever its checkpoint dir holds)", async () => {
  const c = makeCheckout();
  checkouts.push(c);
  const a = trainSection(await plan(c, [], 'run-a'));
  const b = trainSection(await plan(c, [], 'run-b'));
  assert.match(a, /checkpointing\.checkpoint_dir=<STATE>\/runs\/run-a\/checkpoints/);
  assert.match(b, /checkpointing\.checkpoint_dir=<STATE>\/runs\/run-b\/checkpoints/);
  assert.doesNotMatch(b, /run-a/);
});

test('without a checkout the plan says what is missing, naming both layouts when the checkout has neither', async () => {
  const c = makeCheckout();
  checkouts.push(c);
  const { rmSync } = await import('node:fs');
  rmSync(join(c.dir, 'examples'), { recursive: true, force: true });
  const t = trainSection(await plan(c, []));
  assert.match(t, /has neither NeMo RL layout: looked for examples\/nemo_gym\/run_grpo_nemo_gym\.py .* and examples\/penguin\/run_grpo_penguin\.py/);
});

test("the recipe lint counts the real run: save 6 / val 10 over 19 steps warns with the fix, aligned periods are quiet", async () => {
  // 1255 training rows / 64 prompts per step, one epoch = 19 steps (the recipe's real length).
  const c = makeCheckout({ train: 1255, validation: 10 });
  checkouts.push(c);
  const check = (sets: string[]) => cli(['config', 'check', CONFIG, '--set', `nemo_rl.repo_dir=${c.dir}`, ...sets.flatMap((s) => ['--set', s])], { env: { GRPO_STATE_DIR: STATE } });
  const real = await check(['trainer.grpo.val_period=10']);
  assert.equal(real.code, 0, real.out);
  assert.match(real.stderr, /no checkpoint will carry val:accuracy: the run is 19 steps \(1255 training rows/);
  assert.match(real.stderr, /saves at steps 6, 12, 18, 19 .* validates at 0, 10 /);
  assert.match(real.stderr, /Fix: --set trainer\.grpo\.val_period=6/);
  const aligned = await check([]);
  assert.equal(aligned.code, 0, aligned.out);
  assert.doesNotMatch(aligned.stderr, /will carry/);
  const badMetric = await check(['trainer.checkpointing.metric_name=accuracy']);
  assert.equal(badMetric.code, 2);
  assert.match(badMetric.out, /trainer\.checkpointing\.metric_name/);
});

test("W&B on in the recipe without WANDB_API_KEY in the worker's environment: a warning that says how to turn it off", async () => {
  const c = makeCheckout();
  checkouts.push(c);
  const { loadConfigFile } = await import('../../src/config/load.js');
  const { getBackend } = await import('../../src/backends/index.js');
  const { runPaths } = await import('../../src/common/state.js');
  const config = loadConfigFile(CONFIG, [`nemo_rl.repo_dir=${c.dir}`]).config;
  const ctx = { config, repoRoot: ROOT, stateDir: STATE, paths: runPaths(STATE, 'preflight') };
  const backend = getBackend('nemo_rl');
  const without = backend.preflight!(ctx, {});
  assert.deepEqual(without.errors, []);
  assert.match(without.warnings.join('\n'), /WANDB_API_KEY is not in the worker's environment.*--set trainer\.logger\.wandb_enabled=false/);
  assert.deepEqual(backend.preflight!(ctx, { WANDB_API_KEY: 'x'.repeat(40) }).warnings, []);
  assert.deepEqual(backend.preflight!(ctx, { WANDB_MODE: 'offline' }).warnings, []);
  const off = loadConfigFile(CONFIG, [`nemo_rl.repo_dir=${c.dir}`, 'trainer.logger.wandb_enabled=false']).config;
  assert.deepEqual(backend.preflight!({ ...ctx, config: off }, {}).warnings, []);
});
