/**
 * Hugging Face settings as the backends spell them (in-process): `model.revision` reaches both
 * downloads and the model's identity, bad revisions are refused, and WANDB_API_KEY reaches the
 * built-in trainer only when its config logs to W&B. The download itself (resume, cache reuse)
 * is trainer/tests/test_hub_download.py, against the Hub TEST DOUBLE.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, STATE } from '../helpers.js';
import { ConfigError, loadConfigFile } from '../../src/config/load.js';
import { getBackend } from '../../src/backends/index.js';
import { runPaths } from '../../src/common/state.js';
import { renderCommand } from '../../src/common/shell.js';
import { baseModelName } from '../../src/promotion/registry.js';
import { nemoRlOverrides } from '../../src/backends/nemo_rl/command.js';
import { makeCheckout, type Checkout } from '../support/nemo-rl.js';

const CPU = join(ROOT, 'configs', 'builtin-cpu.yaml');
const NEMO = join(ROOT, 'configs', 'nemo-rl-nemotron-nano-9b.yaml');
const checkouts: Checkout[] = [];
after(() => checkouts.forEach((c) => c.remove()));

const ctxOf = (file: string, sets: string[]) => ({ config: loadConfigFile(file, sets).config, repoRoot: ROOT, stateDir: STATE, paths: runPaths(STATE, 'hub-unit') });

test('model.revision reaches prepare-model, names its own model dir and is part of the base model name', () => {
  const pinned = ctxOf(CPU, ['model.source=hf', 'model.name=org/model', 'model.revision=v1.0']);
  const m = getBackend('builtin').model(pinned);
  assert.ok(m.dir.endsWith(join('models', 'hub', 'org--model@v1.0')), m.dir);
  const argv = m.command!.argv;
  assert.deepEqual(argv.slice(argv.indexOf('--source')), ['--source', 'hub:org/model', '--revision', 'v1.0']);
  assert.equal(baseModelName(pinned.config.model), 'hf:org/model@v1.0');

  const main = getBackend('builtin').model(ctxOf(CPU, ['model.source=hf', 'model.name=org/model']));
  assert.ok(main.dir.endsWith(join('models', 'hub', 'org--model')));
  assert.ok(!main.command!.argv.includes('--revision'));
  assert.equal(baseModelName(ctxOf(CPU, ['model.source=hf', 'model.name=org/model']).config.model), 'hf:org/model');
});

test('a revision must look like a branch, tag or commit; on a non-Hub source it is a warning', () => {
  for (const bad of ['-rf', 'v1 .0', 'a/../b', "x';rm"]) assert.throws(() => loadConfigFile(CPU, [`model.revision=${bad}`]), ConfigError, bad);
  for (const good of ['main', 'v1.0', 'refs/pr/1', '0123456789abcdef0123456789abcdef01234567']) assert.equal(loadConfigFile(CPU, ['model.source=hf', 'model.name=o/m', `model.revision=${good}`]).config.model.revision, good);
  assert.match(loadConfigFile(CPU, ['model.revision=v1']).warnings.join('\n'), /model\.revision=v1 applies to Hub models only/);
});

test('nemo_rl: hf download --revision, and NeMo RL is given the downloaded snapshot as policy.model_name', () => {
  const c = makeCheckout();
  checkouts.push(c);
  const ctx = ctxOf(NEMO, [`nemo_rl.repo_dir=${c.dir}`, 'model.name=nvidia/NVIDIA-Nemotron-Nano-9B-v2', 'model.revision=v1.0']);
  const script = getBackend('nemo_rl').model(ctx).command!.argv.at(-1)!;
  assert.match(script, /^uv run hf download nvidia\/NVIDIA-Nemotron-Nano-9B-v2 --revision v1\.0 && /);
  assert.match(script, /snapshot_download\(sys\.argv\[1\], revision=sys\.argv\[2\], local_files_only=True\).*' nvidia\/NVIDIA-Nemotron-Nano-9B-v2 v1\.0$/);
  const snapshot = `${c.dir}/.cache/hub/models--nvidia--NVIDIA-Nemotron-Nano-9B-v2/snapshots/${'a'.repeat(40)}`;
  const overrides = nemoRlOverrides({ ...ctx, model: { modelDir: snapshot, fingerprint: 'x' } });
  assert.equal(overrides.filter((o) => o.includes('policy.model_name=')).at(-1), `policy.model_name=${snapshot}`);

  const plain = ctxOf(NEMO, [`nemo_rl.repo_dir=${c.dir}`]);
  assert.doesNotMatch(getBackend('nemo_rl').model(plain).command!.argv.at(-1)!, /--revision|snapshot_download/);
  assert.deepEqual(nemoRlOverrides({ ...plain, model: { modelDir: 'nvidia/NVIDIA-Nemotron-Nano-9B-v2', fingerprint: 'x' } }), nemoRlOverrides(plain));
});

test('built-in trainer: WANDB_API_KEY is passed only when trainer.logger.wandb_enabled, and its absence is a preflight warning', () => {
  const b = getBackend('builtin');
  const off = ctxOf(CPU, []);
  assert.ok(!b.launch(off, 6).passEnv.includes('WANDB_API_KEY'));
  assert.deepEqual(b.preflight!(off, {}).warnings, []);
  const on = ctxOf(CPU, ['trainer.logger.wandb_enabled=true']);
  const launch = b.launch(on, 6);
  assert.ok(launch.passEnv.includes('WANDB_API_KEY'));
  const key = 'wandb-secret-value-0123456789';
  process.env.WANDB_API_KEY = key;
  try {
    assert.ok(!renderCommand(launch).includes(key), 'plans show the key redacted');
  } finally {
    delete process.env.WANDB_API_KEY;
  }
  assert.match(b.preflight!(on, {}).warnings.join('\n'), /WANDB_API_KEY is not in the worker's environment: W&B stays off/);
  assert.deepEqual(b.preflight!(on, { WANDB_API_KEY: key }).warnings, []);
  assert.deepEqual(b.preflight!(on, { WANDB_MODE: 'offline' }).warnings, []);
});
