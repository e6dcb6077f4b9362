/**
 * NeMo RL backend: the seed tutorial's exact single-node launch (run from a NeMo RL checkout with
 * GPUs). Slurm, monitoring and recovery come in a later issue.
 */
import { join, resolve } from 'node:path';
import type { BackendAdapter, BackendContext, CommandSpec, MetricRecord } from './types.js';
import { parseFailureJson } from './metrics.js';
import { shellQuote } from '../common/shell.js';
import { showSecretEnv } from '../common/redact.js';
import { BACKEND_TRAITS } from './traits.js';

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


const STEP_RE = /=+ Step (\d+)\/(\d+) =+/;
const REWARD_RE = /•\s*Avg Reward:\s*([-\d.eE+]+)/;
const LOSS_RE = /•\s*Loss:\s*([-\d.eE+]+)/;
const ACC_RE = /•\s*Accuracy:\s*([-\d.eE+]+)/;

let lastStep = 0;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

export const nemoRlBackend: BackendAdapter = {
  name: 'nemo_rl',
  ownSection: 'nemo_rl',
  ...BACKEND_TRAITS.nemo_rl,
  lint(cfg) {
    const warnings: string[] = [];
    const { grpo, checkpointing } = cfg.trainer;
    const [save, val, steps] = [checkpointing.save_period, grpo.val_period, grpo.max_num_steps];
    if (checkpointing.metric_name.startsWith('val:')) {
      const lcm = (save * val) / gcd(save, val);
      if (lcm > steps)
        warnings.push(
          `checkpointing.save_period=${save} never coincides with grpo.val_period=${val} within grpo.max_num_steps=${steps} ` +
            `(first common step: ${lcm}). No checkpoint will carry ${checkpointing.metric_name}, so keeping the top ` +
            `${checkpointing.keep_top_k} by ${checkpointing.metric_name} degrades to keeping the newest checkpoints, and ` +
            `"best checkpoint" means "newest". Align them (e.g. --set trainer.checkpointing.save_period=${val}).`,
        );
    }
    if (cfg.trainer.cluster.gpus_per_node === 0) warnings.push('backend nemo_rl with trainer.cluster.gpus_per_node=0: NeMo RL needs GPUs.');
    if (cfg.ray.address) warnings.push('ray.address is for the built-in trainer; NeMo RL joins or starts its own Ray cluster (nemo_rl section).');
    return { errors: [], warnings };
  },
  missingEnvironmentMessage(file) {
    return `NeMo RL checkout not found (${file} missing): set nemo_rl.repo_dir to a NeMo RL checkout; running it also needs GPUs (see grpo plan)`;
  },
  planTraining(ctx, launch) {
    const lines = ['    # optional force-cleanup before a launch (ends processes the pipeline did not start; never run automatically):'];
    for (const p of this.preClean(ctx)) lines.push(`    ${p.argv.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
    lines.push('    # launch (seed tutorial, single node), in ' + launch.cwd + ':');
    const parts = nemoRlLaunchParts(ctx);
    lines.push(...parts.preamble.map((l) => `    ${l}`));
    for (const [k, v] of Object.entries(launch.env)) lines.push(`    ${k}=${k === 'TORCH_CUDA_ARCH_LIST' ? `"${v}"` : v} \\`);
    for (const s of launch.passEnv) lines.push(`    ${showSecretEnv(s)} \\`);
    lines.push(`    ${parts.command.replace(' --config=', ' \\\n        --config=').replace(/ logger\./g, ' \\\n        logger.')}`);
    lines.push('    # needs a NeMo RL checkout (nemo_rl.repo_dir) and GPUs; one segment (NeMo RL resumes from its newest checkpoint itself)');
    return lines;
  },
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
