/**
 * NeMo RL backend: the seed tutorial's exact single-node launch (run from a NeMo RL checkout with
 * GPUs). Slurm, monitoring and recovery come in a later issue.
 */
import { join, resolve } from 'node:path';
import type { BackendAdapter, BackendContext, CommandSpec, MetricRecord } from './types.js';
import { parseFailureJson } from './metrics.js';

function nrl(ctx: BackendContext) {
  const n = ctx.config.nemo_rl;
  if (!n) throw new Error('nemo_rl section missing');
  return n;
}
function repoDir(ctx: BackendContext): string {
  return resolve(ctx.repoRoot, nrl(ctx).repo_dir);
}

/** The seed's launch, verbatim: preamble (EXP_NAME, CONFIG_PATH) and the launch line. */
export function nemoRlLaunchParts(ctx: BackendContext): { preamble: string[]; command: string } {
  const n = nrl(ctx);
  return {
    preamble: [`EXP_NAME="${n.exp_name}"`, `CONFIG_PATH=${n.config_path}`],
    command: `uv run python ${n.script} --config=$CONFIG_PATH logger.wandb.project="${n.wandb_project}" logger.wandb.name=$EXP_NAME logger.log_dir=results/$EXP_NAME`,
  };
}

export function nemoRlLaunchScript(ctx: BackendContext): string {
  const p = nemoRlLaunchParts(ctx);
  // Recovery policies (e.g. a lower vLLM gpu_memory_utilization after an OOM) append Hydra overrides.
  const extra = (ctx.trainerOverrides ?? []).map((o) => ` ${shellQuote(o)}`).join('');
  return [...p.preamble, p.command + extra].join('\n');
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_.=:/+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const STEP_RE = /=+ Step (\d+)\/(\d+) =+/;
const REWARD_RE = /•\s*Avg Reward:\s*([-\d.eE+]+)/;
const LOSS_RE = /•\s*Loss:\s*([-\d.eE+]+)/;
const ACC_RE = /•\s*Accuracy:\s*([-\d.eE+]+)/;

let lastStep = 0;

export const nemoRlBackend: BackendAdapter = {
  name: 'nemo_rl',
  environment(ctx) {
    const dir = repoDir(ctx);
    return {
      kind: 'uv-project',
      dir: join(dir, '.venv'),
      python: join(dir, '.venv', 'bin', 'python'),
      lockFiles: [join(dir, 'uv.lock'), join(dir, 'pyproject.toml')],
      fingerprintExtra: 'nemo_rl',
      build: [{ label: 'sync the locked NeMo RL environment', argv: ['uv', 'sync', '--locked'], cwd: dir, env: {}, passEnv: [] }],
    };
  },
  model(ctx) {
    // NeMo RL downloads `policy.model_name` itself into HF_HOME on first start (HF_TOKEN from the worker env).
    return { dir: join(repoDir(ctx), nrl(ctx).hf_home), command: null };
  },
  data(ctx) {
    const base = join(repoDir(ctx), '3rdparty/Gym-workspace/Gym/data/workplace_assistant');
    return { dir: base, train: join(base, 'train.jsonl'), validation: join(base, 'validation.jsonl'), manifest: '', command: null };
  },
  // NeMo RL runs the whole recipe in one launch (one segment): nothing to hand over.
  segmentHandoff: false,
  launch(ctx) {
    const n = nrl(ctx);
    return {
      label: 'NeMo RL single-node GRPO (seed tutorial)',
      argv: ['bash', '-c', nemoRlLaunchScript(ctx)],
      cwd: repoDir(ctx),
      env: {
        TORCH_CUDA_ARCH_LIST: n.torch_cuda_arch_list,
        HF_HOME: n.hf_home,
        NRL_FORCE_REBUILD_VENVS: ctx.env ? String(ctx.env.nrlForceRebuildVenvs) : 'true',
        // The rate-limit policy sets this once the model is in HF_HOME (seed troubleshooting table).
        ...(ctx.hubOffline ? { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' } : {}),
      },
      passEnv: ['HF_TOKEN', 'WANDB_API_KEY'],
    };
  },
  evaluate() {
    return null;
  },
  checkConfig() {
    return null;
  },
  preClean(ctx) {
    const cwd = repoDir(ctx);
    const note = 'optional force-cleanup (ends processes the pipeline did not start; never run automatically)';
    const mk = (label: string, argv: string[]): CommandSpec => ({ label, argv, cwd, env: {}, passEnv: [], note });
    return [
      mk('stop stray vLLM workers', ['pkill', '-f', 'VllmAsyncGenerationWorker']),
      mk('stop any Ray on this machine', ['ray', 'stop', '--force']),
      mk('shut down a Ray driver', ['python', '-c', 'import ray; ray.shutdown()']),
    ];
  },
  metricsFile(paths) {
    return join(paths.logDir, 'trainer.log');
  },
  parseMetricsLine(line): MetricRecord | null {
    let m = STEP_RE.exec(line);
    if (m) {
      lastStep = Number(m[1]);
      return null;
    }
    if ((m = REWARD_RE.exec(line))) return { kind: 'train', step: lastStep, metrics: { 'train/reward': Number(m[1]) } };
    if ((m = LOSS_RE.exec(line))) return { kind: 'train', step: lastStep, metrics: { 'train/loss': Number(m[1]) } };
    if ((m = ACC_RE.exec(line))) return { kind: 'validation', step: lastStep, metrics: { 'validation/accuracy': Number(m[1]) } };
    return null;
  },
  failureFile(paths) {
    return join(paths.logDir, 'failure.json');
  },
  parseFailure: parseFailureJson,
};
