/** The built-in trainer's Ray Train workers must fit the Ray head the pipeline starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, cli } from '../helpers.js';
import { loadConfigFile, ConfigError } from '../../src/config/load.js';

const CPU = join(ROOT, 'configs', 'builtin-cpu.yaml');

function problems(sets: string[]): string[] {
  try {
    loadConfigFile(CPU, sets);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

test('the shipped CPU config has no cluster warning', () => {
  const { warnings } = loadConfigFile(CPU);
  assert.deepEqual(warnings.filter((w) => /num_workers|num_gpus|gpus_per_node/.test(w)), []);
});

test('two GPU workers on two Ray GPUs are valid and agree with gpus_per_node', () => {
  const { config, warnings } = loadConfigFile(CPU, ['ray.num_gpus=2', 'trainer.cluster.gpus_per_node=2', 'trainer.cluster.num_workers=2']);
  assert.equal(config.trainer.cluster.num_workers, 2);
  assert.deepEqual(warnings.filter((w) => /num_workers|num_gpus|gpus_per_node/.test(w)), []);
});

test('more workers than Ray GPUs (or CPUs on a CPU head) is an invalid config naming the field', () => {
  const gpu = problems(['ray.num_gpus=2', 'trainer.cluster.gpus_per_node=2', 'trainer.cluster.num_workers=4']);
  assert.equal(gpu.length, 1);
  assert.match(gpu[0]!, /trainer\.cluster\.num_workers: expected at most ray\.num_gpus=2 .*got 4/);
  const cpu = problems(['trainer.cluster.num_workers=4']);
  assert.match(cpu.join('\n'), /trainer\.cluster\.num_workers: expected at most ray\.num_cpus=2 .*got 4/);
  assert.match(problems(['trainer.cluster.num_workers=0']).join('\n'), /trainer\.cluster\.num_workers/);
});

test("workers must split a step evenly: the trainer's rule, reported by grpo config check", async () => {
  const sets = ['ray.num_gpus=3', 'trainer.cluster.gpus_per_node=3', 'trainer.grpo.num_prompts_per_step=1', 'trainer.grpo.num_generations_per_prompt=4'];
  assert.deepEqual(problems(sets), [], 'the pipeline does not repeat the rule');
  const r = await cli(['config', 'check', CPU, ...sets.flatMap((s) => ['--set', s])]);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /cluster\.num_workers/);
  assert.match(r.out, /4/);
});

test('GPU settings that disagree produce warnings', () => {
  const noRayGpus = loadConfigFile(CPU, ['trainer.cluster.gpus_per_node=2']).warnings.join('\n');
  assert.match(noRayGpus, /gpus_per_node=2 but ray\.num_gpus=0/);
  const mismatch = loadConfigFile(CPU, ['ray.num_gpus=2']).warnings.join('\n');
  assert.match(mismatch, /gpus_per_node x num_nodes = 0 but ray\.num_gpus=2/);
  const idle = loadConfigFile(CPU, ['ray.num_gpus=2', 'trainer.cluster.gpus_per_node=2', 'trainer.cluster.num_workers=1']).warnings.join('\n');
  assert.match(idle, /leaves 1 of ray\.num_gpus=2 GPUs idle/);
  const noRay = loadConfigFile(CPU, ['ray.enabled=false', 'trainer.cluster.num_workers=2']).warnings.join('\n');
  assert.match(noRay, /num_workers is ignored/);
});
