/**
 * The recipe against the run it will really be: NeMo RL's GRPO stops at
 * min(max_num_steps, max_num_epochs x floor(train rows / num_prompts_per_step)) (the dataloader drops
 * the last partial batch), saves every save_period steps and at the last step, and validates at
 * step 0 (val_at_start), every val_period steps and at the last step (val_at_end). Top-k by
 * `checkpointing.metric_name` is only meaningful when some checkpoint carries the metric.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PipelineConfig } from '../../config/schema.js';
import { REPO_ROOT, runPaths, stateDir } from '../../common/state.js';
import type { BackendContext } from '../types.js';
import { countRows, getKey } from './recipe.js';
import { recipeOf, usesSlurm } from './settings.js';

type Tree = Record<string, unknown>;

/** A setting as NeMo RL will see it: the pipeline's trainer section wins over the recipe. */
function effective(config: PipelineConfig, recipe: Tree | null, key: string): unknown {
  const mine = getKey(config.trainer as Tree, key);
  return mine.found ? mine.value : recipe ? getKey(recipe, key).value : undefined;
}

export interface RunShape {
  steps: number;
  saves: number[];
  validations: number[];
  carrying: number[];
  trainRows: number | null;
}

/** Which steps save and which validate, in the run this config makes (null when the data is not there to count). */
export function runShape(config: PipelineConfig, recipe: Tree | null, trainRows: number | null): RunShape {
  const num = (k: string, d: number) => (typeof effective(config, recipe, k) === 'number' ? (effective(config, recipe, k) as number) : d);
  const maxSteps = num('grpo.max_num_steps', Infinity);
  const epochs = num('grpo.max_num_epochs', 1);
  const perStep = num('grpo.num_prompts_per_step', 1);
  const savePeriod = num('checkpointing.save_period', 0);
  const valPeriod = num('grpo.val_period', 0);
  const steps = trainRows === null ? maxSteps : Math.min(maxSteps, epochs * Math.floor(trainRows / perStep));
  const saves: number[] = [];
  const validations: number[] = [];
  if (Number.isFinite(steps)) {
    for (let s = 1; s <= steps; s++) {
      if ((savePeriod > 0 && s % savePeriod === 0) || s === steps) saves.push(s);
      if ((valPeriod > 0 && s % valPeriod === 0) || (s === steps && effective(config, recipe, 'grpo.val_at_end') === true)) validations.push(s);
    }
    if (effective(config, recipe, 'grpo.val_at_start') === true) validations.unshift(0);
  }
  const metric = String(effective(config, recipe, 'checkpointing.metric_name') ?? 'val:accuracy');
  const carrying = metric.startsWith('train:') ? saves : saves.filter((s) => validations.includes(s));
  return { steps, saves, validations, carrying, trainRows };
}

export function lintNemoRl(config: PipelineConfig): { errors: string[]; warnings: string[] } {
  const warnings: string[] = [];
  const errors: string[] = [];
  const state = stateDir(config.state_dir);
  const ctx: BackendContext = { config, repoRoot: REPO_ROOT, stateDir: state, paths: runPaths(state, 'lint') };
  const recipe = recipeOf(ctx);
  const metric = String(effective(config, recipe, 'checkpointing.metric_name') ?? 'val:accuracy');
  if (!/^(val|train):/.test(metric)) errors.push(`trainer.checkpointing.metric_name: NeMo RL needs a name starting with "val:" or "train:", got ${JSON.stringify(metric)}`);
  if (config.trainer.warm_start?.enabled)
    warnings.push('trainer.warm_start.enabled: the supervised warm start is a built-in trainer stage; backend nemo_rl skips it (warm-start the model first, or use NeMo RL SFT)');
  if (config.trainer.cluster.gpus_per_node === 0) warnings.push('backend nemo_rl with trainer.cluster.gpus_per_node=0: NeMo RL needs GPUs.');
  if (config.ray.address) warnings.push('ray.address is for the built-in trainer; NeMo RL joins or starts its own Ray cluster (nemo_rl section).');
  if (config.trainer.cluster.num_nodes > 1 && config.nemo_rl?.launcher === 'local')
    errors.push(`nemo_rl.launcher: local runs one node, but trainer.cluster.num_nodes=${config.trainer.cluster.num_nodes}; use launcher slurm (or auto)`);
  if (usesSlurm(config) && !config.nemo_rl?.slurm.container) errors.push('nemo_rl.slurm.container: ray.sub needs a container image (e.g. nvcr.io/nvidia/nemo-rl:v0.4.0)');
  if (usesSlurm(config) && !config.nemo_rl?.slurm.partition)
    errors.push("nemo_rl.slurm.partition: expected your cluster's partition (sinfo lists them): ray.sub's own #SBATCH header names a placeholder partition, so sbatch needs one given");
  const trainPath = effective(config, recipe, 'data.train.data_path');
  const repo = resolve(REPO_ROOT, config.nemo_rl?.repo_dir ?? 'RL');
  const rows = typeof trainPath === 'string' && existsSync(resolve(repo, trainPath)) ? countRows(resolve(repo, trainPath)) : null;
  const shape = runShape(config, recipe, rows);
  if (metric.startsWith('val:') && shape.saves.length && !shape.carrying.length) {
    const save = effective(config, recipe, 'checkpointing.save_period');
    const val = effective(config, recipe, 'grpo.val_period');
    warnings.push(
      `no checkpoint will carry ${metric}: the run is ${shape.steps} steps${rows !== null ? ` (${rows} training rows / grpo.num_prompts_per_step, grpo.max_num_epochs)` : ''}, ` +
        `it saves at steps ${shape.saves.join(', ')} (checkpointing.save_period=${save} and the last step) and validates at ${shape.validations.join(', ') || 'no step'} (grpo.val_period=${val}), ` +
        `so top-k by ${metric} keeps the newest and "best" means "newest". Fix: --set trainer.grpo.val_period=${save} (or trainer.checkpointing.save_period=${val}).`,
    );
  }
  return { errors, warnings };
}
