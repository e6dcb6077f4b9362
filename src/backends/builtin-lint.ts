/** Pipeline-level rules for the built-in backend: its Ray workers against the Ray head the pipeline starts. */
import type { PipelineConfig } from '../config/schema.js';

/**
 * The built-in trainer's Ray Train workers against the Ray head the pipeline starts
 * (`ray.num_cpus`/`ray.num_gpus`): one worker per GPU unless `trainer.cluster.num_workers`
 * says otherwise, each needing a GPU (GPU runs) or a CPU. Rules about the trainer section alone
 * (batch shapes, save/val alignment) are the trainer's: `python -m grpo_trainer check-config`.
 */
/** Ray Train workers on the pipeline's Ray head: trainer.cluster.num_workers, else one per GPU, else one. */
export function rayWorkers(cfg: PipelineConfig): number {
  return cfg.trainer.cluster.num_workers ?? (cfg.ray.num_gpus > 0 ? cfg.ray.num_gpus : 1);
}

export function lintBuiltin(cfg: PipelineConfig): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const { cluster } = cfg.trainer;
  const set = cluster.num_workers ?? null;
  if (cfg.model.revision && cfg.model.source !== 'hf')
    warnings.push(`model.revision=${cfg.model.revision} applies to Hub models only (model.source=hf); model.source=${cfg.model.source} ignores it.`);
  if (!cfg.ray.enabled) {
    if (set !== null && set > 1)
      warnings.push(`trainer.cluster.num_workers=${set} with ray.enabled=false: without Ray the trainer runs as one process, so num_workers is ignored.`);
    return { errors, warnings };
  }
  const gpus = cfg.ray.num_gpus;
  const workers = rayWorkers(cfg);
  if (gpus > 0 && workers > gpus)
    errors.push(`trainer.cluster.num_workers: expected at most ray.num_gpus=${gpus} (one GPU per worker), got ${workers}`);
  if (gpus === 0 && workers > cfg.ray.num_cpus)
    errors.push(`trainer.cluster.num_workers: expected at most ray.num_cpus=${cfg.ray.num_cpus} (one CPU per worker on a CPU-only Ray head), got ${workers}`);
  const declared = cluster.gpus_per_node * cluster.num_nodes;
  if (gpus === 0 && declared > 0)
    warnings.push(`trainer.cluster.gpus_per_node=${cluster.gpus_per_node} but ray.num_gpus=0: the Ray head offers no GPUs, so the built-in trainer trains on CPU. Set --set ray.num_gpus=${declared} to train on GPUs.`);
  else if (gpus > 0 && declared !== gpus)
    warnings.push(`trainer.cluster.gpus_per_node x num_nodes = ${declared} but ray.num_gpus=${gpus}: the built-in trainer uses ${workers} GPU worker(s). Make them agree (--set trainer.cluster.gpus_per_node=${gpus}).`);
  if (gpus > 0 && workers < gpus)
    warnings.push(`trainer.cluster.num_workers=${workers} leaves ${gpus - workers} of ray.num_gpus=${gpus} GPUs idle.`);
  return { errors, warnings };
}
