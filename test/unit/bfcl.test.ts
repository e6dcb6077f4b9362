/** The BFCL stage's commands: its environment build and the `python -m grpo_trainer bfcl` call. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { REPO_ROOT } from '../../src/common/state.js';
import { bfclCommand, bfclPrefill } from '../../src/activities/bfcl.js';
import { bfclEnvSpec } from '../../src/environment/bfcl.js';

const base = {
  backend: 'builtin',
  trainer: { grpo: { max_num_steps: 4, val_period: 2 }, checkpointing: { keep_top_k: 1, save_period: 2 }, env: { workplace_assistant: { prefill_tool_call: true } } },
};

test('bfcl config: disabled by default, v3 default categories with a multi-turn subset', () => {
  const c = validateConfig(base, []).config;
  assert.equal(c.bfcl.enabled, false);
  assert.deepEqual(c.bfcl.categories, ['simple', 'multiple', 'parallel', 'multi_turn_base']);
  assert.deepEqual(c.bfcl.limit_for, { multi_turn_base: 5 });
  assert.throws(() => validateConfig({ ...base, bfcl: { limt: 3 } }, []), /limt/);
});

test('bfcl command: categories, limits, prefill following the trainer unless set, the trainer python serves', () => {
  const c = validateConfig(base, ['bfcl.enabled=true', 'bfcl.limit=10']).config;
  assert.equal(bfclPrefill(c), true);
  const spec = bfclCommand(c, { bfclPython: '/s/envs/bfcl/bin/python', trainerPython: '/s/envs/builtin/bin/python', modelPath: '/r/checkpoints/step_4', outDir: '/r/bfcl/final', which: 'final' });
  assert.deepEqual(spec.argv.slice(0, 4), ['/s/envs/bfcl/bin/python', '-m', 'grpo_trainer', 'bfcl']);
  const arg = (k: string) => spec.argv[spec.argv.indexOf(k) + 1];
  assert.equal(arg('--model'), '/r/checkpoints/step_4');
  assert.equal(arg('--trainer-python'), '/s/envs/builtin/bin/python');
  assert.equal(arg('--categories'), 'simple,multiple,parallel,multi_turn_base');
  assert.equal(arg('--limit'), '10');
  assert.equal(arg('--limit-for'), 'multi_turn_base=5');
  assert.ok(spec.argv.includes('--prefill-tool-call'));
  const off = validateConfig(base, ['bfcl.prefill_tool_call=false', 'bfcl.categories=[simple]']).config;
  const spec2 = bfclCommand(off, { bfclPython: 'p', trainerPython: 't', modelPath: 'm', outDir: 'o', which: 'baseline' });
  assert.ok(spec2.argv.includes('--no-prefill-tool-call'));
  assert.ok(!spec2.argv.includes('--limit-for'), 'no override for a category that is not run');
});

test('bfcl environment: its own venv from trainer/requirements-bfcl.lock, installed without resolving', () => {
  const b = bfclEnvSpec('/s', 'python3.11');
  assert.equal(b.dir, '/s/envs/bfcl');
  assert.deepEqual(b.lockFiles, [join(REPO_ROOT, 'trainer', 'requirements-bfcl.lock')]);
  assert.deepEqual(b.build[0]!.argv, ['python3.11', '-m', 'venv', '/s/envs/bfcl']);
  assert.deepEqual(b.build[1]!.argv.slice(-3), ['--no-deps', '-r', b.lockFiles[0]]);
});
