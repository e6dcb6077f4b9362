/**
 * What the workflow needs to know about a backend, as data. Deterministic code only (no Node
 * built-ins): the workflow imports this module, the adapters (src/backends/*.ts) include it.
 */

/** The knobs the OOM policy may turn, and where each lives in the trainer section. */
export interface OomKnobSpec {
  /** The trainer's default training micro batch when the config does not set one. */
  microBatchDefault: number;
  /** Halved together with the micro batch (NeMo RL's policy.logprob_batch_size). */
  logprobBatchKey: string | null;
  /** Generation batch halved after the micro batch (built-in grpo.val_batch_size), with its default. */
  generationBatch: { key: string; default: number } | null;
  /** vLLM's memory share lowered after the micro batch (NeMo RL). */
  gpuMemoryUtilizationKey: string | null;
  /** What raising parallelism means, and its key (the second one when Megatron is enabled). */
  parallelism: { kind: 'tensor' | 'data'; key: string; megatronKey?: string };
}

export interface BackendTraits {
  /** The whole run is one launch (the trainer resumes itself); otherwise one activity per run.segment_steps. */
  singleLaunch: boolean;
  /** Its launches take NRL_FORCE_REBUILD_VENVS (NeMo RL's per-worker uv venvs). */
  forcedVenvRebuild: boolean;
  /** Its environment runs grpo_trainer's tools: report plots, checkpoint export, serving for BFCL. */
  runsTrainerTools: boolean;
  /** It starts (or joins) its own Ray cluster: after a Ray failure it is relaunched, not given a new head. */
  ownRayCluster: boolean;
  /** It can run the supervised warm start (trainer.warm_start) before GRPO. */
  supportsWarmStart: boolean;
  oom: OomKnobSpec;
}

export const BACKEND_TRAITS: Record<'builtin' | 'nemo_rl', BackendTraits> = {
  builtin: {
    singleLaunch: false,
    forcedVenvRebuild: false,
    runsTrainerTools: true,
    ownRayCluster: false,
    supportsWarmStart: true,
    oom: {
      // trainer/grpo_trainer/config/schema.py: PolicyConfig.train_micro_batch_size, GrpoConfig.val_batch_size
      microBatchDefault: 4,
      logprobBatchKey: null,
      generationBatch: { key: 'grpo.val_batch_size', default: 8 },
      gpuMemoryUtilizationKey: null,
      parallelism: { kind: 'data', key: 'cluster.num_workers' },
    },
  },
  nemo_rl: {
    singleLaunch: true,
    forcedVenvRebuild: true,
    runsTrainerTools: false,
    ownRayCluster: true,
    supportsWarmStart: false,
    oom: {
      // The workplace recipe's own value.
      microBatchDefault: 1,
      logprobBatchKey: 'policy.logprob_batch_size',
      generationBatch: null,
      gpuMemoryUtilizationKey: 'policy.generation.vllm_cfg.gpu_memory_utilization',
      parallelism: { kind: 'tensor', key: 'policy.dtensor_cfg.tensor_parallel_size', megatronKey: 'policy.megatron_cfg.tensor_model_parallel_size' },
    },
  },
};

export function traitsOf(backend: string): BackendTraits {
  const t = (BACKEND_TRAITS as Record<string, BackendTraits>)[backend];
  if (!t) throw new Error(`unknown backend ${JSON.stringify(backend)} (expected builtin or nemo_rl)`);
  return t;
}
