/**
 * The warmStart stage with the REAL trainer and a tiny random-weights model, called as the worker
 * calls it: verified traces of the training split, SFT into <state>/warm/<key>; killed mid-way it
 * resumes from its newest checkpoint; run again with the same inputs it is reused, not retrained.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ROOT, uniq } from '../helpers.js';
import { fetchModel, prepareData, prepareEnvironment, resolveRun } from '../../src/activities/index.js';
import { warmStart, warmStartKey } from '../../src/activities/warm-start.js';
import { procCmdline } from '../../src/process/proc.js';

const SET = [
  'model.source=tiny-random',
  'ray.enabled=false',
  'trainer.warm_start.enabled=true',
  'trainer.warm_start.epochs=1',
  'trainer.warm_start.max_examples=24',
  'trainer.warm_start.batch_size=2',
  'trainer.warm_start.gradient_accumulation_steps=1',
  'trainer.warm_start.save_steps=3',
  'trainer.warm_start.trainable_layers=null',
];

/** The warm-start trainer process working in `dir` (by its command line), if one runs. */
function warmStartPid(dir: string): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = procCmdline(Number(name));
    if (cmd.includes('warm-start') && cmd.includes(dir) && cmd.includes('python')) return Number(name);
  }
  return null;
}

/** Complete checkpoints only: transformers writes trainer_state.json after the weights and optimizer,
 * and a kill before that leaves a folder the resume rightly discards. */
const checkpointsIn = (dir: string) =>
  existsSync(join(dir, 'checkpoints'))
    ? readdirSync(join(dir, 'checkpoints')).filter((n) => /^checkpoint-\d+$/.test(n) && existsSync(join(dir, 'checkpoints', n, 'trainer_state.json')))
    : [];

test('warm start: killed mid-way it resumes from its checkpoint; the same inputs again are reused', { timeout: 15 * 60_000 }, async () => {
  const run = await resolveRun({ configPath: join(ROOT, 'configs', 'builtin-cpu.yaml'), set: SET, workflowId: uniq('warm') });
  const env = await prepareEnvironment({ run });
  const data = await prepareData({ run, env });
  const model = await fetchModel({ run, env });
  const dir = join(run.paths.stateDir, 'warm', warmStartKey(run, model, data));
  rmSync(dir, { recursive: true, force: true });
  try {
    // 1. A real kill of the trainer once it has saved a checkpoint: the stage fails, classified.
    const first = warmStart({ run, env, data, model }).then(
      () => null,
      (e: unknown) => e,
    );
    let killed = false;
    for (let i = 0; i < 600 && !killed; i++) {
      const pid = warmStartPid(dir);
      if (pid && checkpointsIn(dir).length) {
        process.kill(pid, 'SIGKILL'); // as a crash or the kernel's OOM killer would
        killed = true;
      } else await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(killed, 'the warm start saved a checkpoint while running');
    const err = await first;
    assert.ok(err instanceof ApplicationFailure, `a classified failure, got ${String(err)}`);
    assert.equal(existsSync(join(dir, 'warm_start.json')), false, 'no result from a killed run');

    // 2. Again: it resumes from the checkpoint it left, and finishes.
    const resumed = await warmStart({ run, env, data, model });
    assert.equal(resumed.reused, false);
    const result = JSON.parse(readFileSync(join(dir, 'warm_start.json'), 'utf8')) as { resumed_from_step: number | null; steps: number; examples: number };
    assert.ok((result.resumed_from_step ?? 0) >= 3, `resumed from a saved step: ${JSON.stringify(result)}`);
    assert.equal(resumed.steps, result.steps);
    assert.ok(resumed.traces > 0 && resumed.traces <= 24, `traces used: ${resumed.traces}`);
    assert.ok(existsSync(join(resumed.model.modelDir, 'config.json')));
    // Only the training split was traced.
    const trainIds = new Set(readFileSync(data.train, 'utf8').trim().split('\n').map((l) => JSON.stringify((JSON.parse(l) as { id: unknown }).id)));
    for (const line of readFileSync(join(dir, 'traces.jsonl'), 'utf8').trim().split('\n'))
      assert.ok(trainIds.has(JSON.stringify((JSON.parse(line) as { task_id: unknown }).task_id)), 'a trace of a training task');

    // 3. The same model, data and settings: reused, nothing retrained.
    const again = await warmStart({ run, env, data, model });
    assert.equal(again.reused, true);
    assert.equal(again.model.modelDir, resumed.model.modelDir);
    assert.equal(again.model.fingerprint, resumed.model.fingerprint);
    assert.match(readFileSync(join(run.paths.logDir, 'warm-start.log'), 'utf8'), /reusing .*same base model, traces and settings/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(run.paths.runDir, { recursive: true, force: true });
  }
});
