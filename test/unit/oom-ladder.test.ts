/**
 * The OOM ladder never proposes a configuration the trainer rejects: on an awkward shape (micro
 * batch 9, 18 rollouts per step) every rung it climbs is checked by the trainer's own check-config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, STATE } from '../helpers.js';
import { loadConfigFile } from '../../src/config/load.js';
import { DEFAULT_RECOVERY, decide } from '../../src/failures/policy.js';
import { oomKnobs } from '../../src/workflows/recovery.js';

// Without the CPU config's pool of 4 tasks (data.max_train_tasks), which a 9-task step cannot draw from.
const SHAPE = ['trainer.data.max_train_tasks=null', 'trainer.grpo.num_prompts_per_step=9', 'trainer.grpo.num_generations_per_prompt=2', 'trainer.policy.train_micro_batch_size=9'];

function trainerAccepts(overrides: string[]): { ok: boolean; output: string } {
  const r = spawnSync(
    join(STATE, 'envs', 'builtin', 'bin', 'python'),
    ['-m', 'grpo_trainer', 'check-config', '--skip-paths', '--config', join(ROOT, 'configs', 'builtin-cpu.yaml'), ...SHAPE.map((s) => s.replace(/^trainer\./, '')), ...overrides],
    { env: { ...process.env, PYTHONPATH: join(ROOT, 'trainer') }, encoding: 'utf8' },
  );
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

test('micro batch 9 with 18 rollouts per step: every OOM rung ends in a configuration the trainer accepts', () => {
  const cfg = loadConfigFile(join(ROOT, 'configs', 'builtin-cpu.yaml'), SHAPE).config;
  assert.ok(trainerAccepts([]).ok, 'the starting shape is valid');
  const overrides: string[] = [];
  const seen: string[] = [];
  for (let used = 0; used < 10; used++) {
    const action = decide({ type: 'OutOfMemory', stage: 'train', used: 0, settings: DEFAULT_RECOVERY, retryAfterSeconds: null, oom: oomKnobs(cfg, overrides), modelCached: true, random: 0.5 });
    if (action.kind === 'fail') break;
    overrides.push(...action.configChanges);
    seen.push(...action.configChanges);
    const check = trainerAccepts(overrides);
    assert.ok(check.ok, `after ${action.configChanges.join(' ')} the trainer says:\n${check.output}`);
  }
  // The ladder went down the micro batch (9 -> 4 -> 2 -> 1) and then the generation batch.
  assert.deepEqual(seen.slice(0, 3), ['policy.train_micro_batch_size=4', 'policy.train_micro_batch_size=2', 'policy.train_micro_batch_size=1']);
  assert.ok(seen.some((c) => c.startsWith('grpo.val_batch_size=')), seen.join(', '));
});
