/** `grpo plan` output and config parsing details (in-process). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, cli } from '../helpers.js';
import { loadConfigFile, parseSet, validateConfig, ConfigError } from '../../src/config/load.js';
import { renderPlan } from '../../src/cli/plan.js';
import { redact } from '../../src/common/redact.js';

test("plan for the NeMo RL recipe: the seed's launch form, its environment (secrets redacted), force-cleanup only when allowed", () => {
  const prev = process.env.HF_TOKEN;
  process.env.HF_TOKEN = 'hf_secretsecretsecretsecret';
  try {
    const plan = renderPlan(loadConfigFile(join(ROOT, 'configs', 'nemo-rl-nemotron-nano-9b.yaml')), 'r1');
    for (const s of [
      'EXP_NAME="$(date +%Y%m%d)/nemo_gym_grpo/nemotron_nano_v2_9b/r1"',
      'CONFIG_PATH=examples/nemo_gym/grpo_workplace_assistant_nemotron_nano_v2_9b.yaml',
      'TORCH_CUDA_ARCH_LIST="9.0 10.0"',
      'NRL_FORCE_REBUILD_VENVS=true',
      'uv run python examples/nemo_gym/run_grpo_nemo_gym.py',
      '--config=$CONFIG_PATH',
      'logger.wandb.project="${USER}-nemo-gym-rl-integration"',
      'logger.wandb.name=$EXP_NAME',
      "HF_TOKEN=<redacted; taken from the worker's environment>",
      "WANDB_API_KEY=<redacted; taken from the worker's environment",
      'the trainer keeps the top 3 by val:accuracy',
    ])
      assert.ok(plan.includes(s), `plan lacks ${s}\n${plan}`);
    assert.match(plan, /HF_HOME=\/\S+\/\.cache/, 'HF_HOME is absolute');
    assert.ok(!plan.includes('hf_secretsecretsecretsecret'));
    assert.ok(!plan.includes('pkill -f VllmAsyncGenerationWorker'), 'the host-wide cleanup is not planned unless allowed');
    const forced = renderPlan(loadConfigFile(join(ROOT, 'configs', 'nemo-rl-nemotron-nano-9b.yaml'), ['recovery.force_cleanup=true']), 'r1');
    for (const s of ['pkill -f VllmAsyncGenerationWorker', 'ray stop --force', "import ray; ray.shutdown()"]) assert.ok(forced.includes(s), `forced plan lacks ${s}`);
  } finally {
    if (prev === undefined) delete process.env.HF_TOKEN;
    else process.env.HF_TOKEN = prev;
  }
});

test('plan for the default config lists every stage with exact commands', () => {
  const plan = renderPlan(loadConfigFile(join(ROOT, 'configs', 'builtin-cpu.yaml')), 'r1');
  for (const s of ['prepareEnvironment', '--no-deps -r', 'requirements.lock', 'prepare-data', 'prepare-model', 'HF_HUB_OFFLINE=1', 'ray', 'start --head', 'segments ending at steps 6, 12', 'grpo.stop_after_step=<segment end>', "RAY_ADDRESS='127.0.0.1:<ray port>'", 'evaluate', 'summary.json', 'cleanup'])
    assert.ok(plan.includes(s), `plan lacks ${s}`);
});

/** The state dir a plan reports on its second line. */
const STATE_DIR_OF_PLAN = (plan: string) => /State dir: (\S+)/.exec(plan)![1]!;

test("the plan shows Ray's token authentication by the token file's path, never a token", () => {
  const plan = renderPlan(loadConfigFile(join(ROOT, 'configs', 'builtin-cpu.yaml')), 'r1');
  const tokenFile = join(STATE_DIR_OF_PLAN(plan), 'runs', 'r1', 'secrets', 'ray-auth-token');
  for (const s of ['RAY_AUTH_MODE=token', 'RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0', `RAY_AUTH_TOKEN_PATH=${tokenFile}`, 'its value is never shown', 'remove its token'])
    assert.ok(plan.includes(s), `plan lacks ${s}\n${plan}`);
  // Head and trainer both get the path (two commands), and no 64-hex token appears anywhere.
  assert.equal(plan.split(`RAY_AUTH_TOKEN_PATH=${tokenFile}`).length - 1, 2);
  assert.doesNotMatch(plan, /[0-9a-f]{64}/);
  const user = renderPlan(loadConfigFile(join(ROOT, 'configs', 'builtin-cpu.yaml'), ['ray.address=10.0.0.5:6379']), 'r1');
  assert.match(user, /the user's Ray cluster at 10\.0\.0\.5:6379/);
  assert.match(user, /RAY_AUTH_TOKEN=<redacted; taken from the worker's environment/);
  assert.doesNotMatch(user, /ray start --head|ray-auth-token/);
});

test('the plan command runs nothing and exits 0', async () => {
  const r = await cli(['plan', join(ROOT, 'configs', 'builtin-cpu.yaml')], { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /nothing is run/);
});

test('--set values are YAML scalars and create nested fields', () => {
  assert.deepEqual(parseSet('a.b=6'), { path: ['a', 'b'], value: 6 });
  assert.deepEqual(parseSet('a=true'), { path: ['a'], value: true });
  assert.deepEqual(parseSet('a=null'), { path: ['a'], value: null });
  assert.deepEqual(parseSet('a="6"'), { path: ['a'], value: '6' });
  assert.deepEqual(parseSet('x=9.0 10.0'), { path: ['x'], value: '9.0 10.0' });
  const c = loadConfigFile(join(ROOT, 'configs', 'builtin-cpu.yaml'), ['trainer.grpo.max_num_steps=4', 'trainer.policy.generation.top_k=5']);
  assert.equal(c.config.trainer.grpo.max_num_steps, 4);
  assert.equal((c.config.trainer.policy as { generation: { top_k: number } }).generation.top_k, 5);
});

test('inline configs are validated the same way', () => {
  assert.throws(() => validateConfig([1, 2]), (e: unknown) => e instanceof ConfigError && /expected a mapping/.test((e as Error).message));
  assert.throws(() => validateConfig({ trainer: {} }), (e: unknown) => e instanceof ConfigError && /trainer\.grpo: expected object, got nothing/.test((e as Error).message));
});

test('redaction hides secrets from the worker env and token-shaped strings', () => {
  assert.equal(redact('token hf_abcdefghij12345 ok', {}), 'token *** ok');
  assert.equal(redact('key=s3cr3tvalue', { WANDB_API_KEY: 's3cr3tvalue' }), 'key=***');
});
