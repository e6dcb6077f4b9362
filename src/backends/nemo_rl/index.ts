/**
 * The NeMo RL backend: the NeMo Gym workplace-assistant GRPO recipe run from a NeMo RL checkout,
 * on one node (`uv run python examples/nemo_gym/run_grpo_nemo_gym.py ...`) or across Slurm nodes
 * (`sbatch ray.sub`). NeMo RL owns its checkpoints (retention, resume); the pipeline gives each run
 * its own checkpoint and log dirs, passes every setting as a Hydra override, reads progress from
 * the driver's stdout and metrics from TensorBoard. docs/nemo-rl.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { renderCommand } from '../../common/shell.js';
import { showSecretEnv } from '../../common/redact.js';
import { parseFailureJson, parseMetricsJsonLine } from '../metrics.js';
import { BACKEND_TRAITS } from '../traits.js';
import type { BackendAdapter, BackendContext, CommandSpec } from '../types.js';
import { evaluation, launchEnv, launchLines, localLaunch, modelDownload, sbatchSpec, slurmLogBase } from './command.js';
import { lintNemoRl } from './lint.js';
import { getKey } from './recipe.js';
import { hfHome, layoutOf, nemoLogDir, nrl, recipeOf, repoDir, usesSlurm } from './settings.js';

/** `========================= Step N/M =========================` (NeMo RL's grpo.py, 25 '=' each side). */
const STEP_BANNER = /=+ Step (\d+)\/(\d+) =+/;

/** The recipe's data files, with the pipeline's trainer section and user overrides taken into account. */
export function dataFiles(ctx: BackendContext): { train: string; validation: string } {
  const recipe = recipeOf(ctx) ?? {};
  const pick = (split: 'train' | 'validation') => {
    const fromTrainer = getKey(ctx.config.trainer as Record<string, unknown>, `data.${split}.data_path`);
    const v = fromTrainer.found ? fromTrainer.value : getKey(recipe, `data.${split}.data_path`).value;
    const p = typeof v === 'string' && v ? v : `3rdparty/Gym-workspace/Gym/data/workplace_assistant/${split}.jsonl`;
    return p.startsWith('/') ? p : join(repoDir(ctx), p);
  };
  return { train: pick('train'), validation: pick('validation') };
}

/** The submodules' commits (`git submodule status`): a bump must rebuild the environment and NeMo RL's actor venvs. */
function submoduleCommits(dir: string): string {
  if (!existsSync(join(dir, '.git'))) return 'no-git';
  try {
    return execFileSync('git', ['-C', dir, 'submodule', 'status', '--recursive'], { encoding: 'utf8', timeout: 30_000 }).replace(/^[ +-U]/gm, '').trim();
  } catch {
    return 'git-failed';
  }
}

export const nemoRlBackend: BackendAdapter = {
  name: 'nemo_rl',
  ownSection: 'nemo_rl',
  ...BACKEND_TRAITS.nemo_rl,
  lint: lintNemoRl,
  missingEnvironmentMessage(file) {
    return `NeMo RL checkout not usable (${file} missing): set nemo_rl.repo_dir to a NeMo RL checkout (git clone --recursive https://github.com/NVIDIA-NeMo/RL); running it also needs GPUs (see grpo plan)`;
  },
  environment(ctx) {
    const dir = repoDir(ctx);
    return {
      kind: 'uv-project',
      dir: join(dir, '.venv'),
      python: join(dir, '.venv', 'bin', 'python'),
      lockFiles: [join(dir, 'uv.lock'), join(dir, 'pyproject.toml')],
      fingerprintExtra: `nemo_rl|submodules:${submoduleCommits(dir)}`,
      build: [
        {
          label: 'initialise the git submodules (NeMo Gym is a uv workspace member)',
          argv: ['bash', '-c', 'if [ -e .git ]; then git submodule update --init --recursive; else echo "not a git checkout: submodules left as they are"; fi'],
          cwd: dir,
          env: {},
          passEnv: [],
        },
        { label: 'sync the locked NeMo RL environment', argv: ['uv', 'sync', '--locked'], cwd: dir, env: {}, passEnv: [] },
      ],
    };
  },
  model(ctx) {
    const id = ctx.config.model.name ?? String(getKey(ctx.config.trainer as Record<string, unknown>, 'policy.model_name').value ?? 'nvidia/NVIDIA-Nemotron-Nano-9B-v2');
    return { dir: join(hfHome(ctx), 'hub', `models--${id.replace('/', '--')}`), ref: id, command: modelDownload(ctx, id) };
  },
  data(ctx) {
    const { train, validation } = dataFiles(ctx);
    return { dir: join(train, '..'), train, validation, manifest: '', command: null };
  },
  checkData(d) {
    for (const [split, path] of [['train', d.train], ['validation', d.validation]] as const) {
      if (!existsSync(path))
        return `data.${split}.data_path: ${path} not found. Prepare the NeMo Gym data in the checkout's Gym (3rdparty/Gym-workspace/Gym): gym dataset collate --config responses_api_models/vllm_model/configs/vllm_model_for_training.yaml --resources-server workplace_assistant --output-dir data/workplace_assistant --mode train_preparation --download +data_source=huggingface`;
      const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim());
      if (!lines.length) return `data.${split}.data_path: ${path} is empty`;
      for (const [i, l] of lines.slice(0, 50).entries()) {
        try {
          const row = JSON.parse(l) as Record<string, unknown>;
          if (!row.responses_create_params) return `data.${split}.data_path: ${path} line ${i + 1} has no responses_create_params (not NeMo Gym task JSONL)`;
        } catch {
          return `data.${split}.data_path: ${path} line ${i + 1} is not JSON`;
        }
      }
    }
    return null;
  },
  // NeMo RL runs the whole recipe in one launch: nothing to hand over between segments.
  segmentHandoff: false,
  launch(ctx) {
    return usesSlurm(ctx.config) ? sbatchSpec(ctx, { resubmit: false }) : localLaunch(ctx);
  },
  launcher(config) {
    return usesSlurm(config) ? 'slurm' : 'local';
  },
  slurmLogBase,
  resubmit(ctx) {
    return sbatchSpec(ctx, { resubmit: true });
  },
  evaluate(ctx, model, outPath) {
    const d = ctx.data ?? this.data(ctx);
    return evaluation(ctx, model, outPath, d.validation, ctx.config.eval.limit);
  },
  checkConfig() {
    return null;
  },
  preflight(ctx, workerEnv) {
    const errors: string[] = [];
    const warnings: string[] = [];
    const l = layoutOf(ctx);
    if (l.problem) errors.push(l.problem);
    const recipe = recipeOf(ctx) ?? {};
    const mine = getKey(ctx.config.trainer as Record<string, unknown>, 'logger.wandb_enabled');
    const wandb = mine.found ? mine.value : getKey(recipe, 'logger.wandb_enabled').value;
    const mode = workerEnv.WANDB_MODE;
    if (wandb === true && !workerEnv.WANDB_API_KEY && mode !== 'offline' && mode !== 'disabled')
      warnings.push(
        "the recipe logs to W&B (logger.wandb_enabled: true) but WANDB_API_KEY is not in the worker's environment, so NeMo RL will stop at wandb's login: set WANDB_API_KEY where the worker runs, or turn W&B off with --set trainer.logger.wandb_enabled=false (TensorBoard stays on)",
      );
    return { errors, warnings };
  },
  preClean(ctx) {
    const cwd = repoDir(ctx);
    const note = 'force-cleanup (ends processes the pipeline did not start; only with recovery.force_cleanup: true)';
    const mk = (label: string, argv: string[]): CommandSpec => ({ label, argv, cwd, env: {}, passEnv: [], note });
    return [
      mk('stop stray vLLM workers', ['pkill', '-f', 'VllmAsyncGenerationWorker']),
      mk('stop any Ray on this machine', ['uv', 'run', 'ray', 'stop', '--force']),
      mk('shut down a Ray driver', ['uv', 'run', 'python', '-c', 'import ray; ray.shutdown()']),
    ];
  },
  metricsFile(paths) {
    return join(paths.logDir, 'metrics.jsonl');
  },
  parseMetricsLine: parseMetricsJsonLine,
  parseDriverLine(line) {
    const m = STEP_BANNER.exec(line);
    return m ? { step: Number(m[1]) - 1, total: Number(m[2]), running: true } : null;
  },
  refreshMetrics(ctx, python) {
    const tool = join(ctx.repoRoot, 'trainer', 'grpo_trainer', 'tools', 'tb_scalars.py');
    return { label: 'TensorBoard scalars -> metrics.jsonl', argv: [python, tool, '--log-dir', nemoLogDir(ctx), '--out', join(ctx.paths.logDir, 'metrics.jsonl')], cwd: ctx.repoRoot, env: {}, passEnv: [] };
  },
  failureFile(paths) {
    return join(paths.logDir, 'failure.json');
  },
  parseFailure: parseFailureJson,
  planTraining(ctx, launch) {
    const l = layoutOf(ctx);
    const lines = [`    # layout: ${l.layout} (${l.script}, ${l.configPath})${l.problem ? `; ${l.problem}` : ''}`];
    lines.push(`    # checkpoints (NeMo RL's own retention, resume from the newest step_N): ${ctx.paths.checkpointDir}; logs and TensorBoard: ${nemoLogDir(ctx)}`);
    if (ctx.config.recovery.force_cleanup) for (const p of this.preClean(ctx)) lines.push(`    ${p.argv.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
    if (usesSlurm(ctx.config)) {
      lines.push(`    # Slurm: submitted from ${launch.cwd}; the job id is kept in the run dir, so a restarted worker re-attaches; logs in ${slurmLogBase(ctx)}/<job id>-logs/ray-driver.log`);
      lines.push(renderCommand(launch));
      lines.push('    # cancel: scancel <job id>; after a failure the policy retries: the same sbatch with --dependency=singleton');
      return lines;
    }
    lines.push(`    # launch (single node), in ${launch.cwd}:`);
    const { preamble, command } = launchLines(ctx);
    lines.push(...preamble.map((x) => `    ${x}`));
    for (const [k, v] of Object.entries(launchEnv(ctx))) lines.push(`    ${k}=${k === 'TORCH_CUDA_ARCH_LIST' ? `"${v}"` : v} \\`);
    for (const s of launch.passEnv) lines.push(`    ${showSecretEnv(s)} \\`);
    lines.push(`    ${command.replace(' --config=', ' \\\n        --config=').replace(/ (?=(\+\+)?[a-z_]+\.[a-z_.]+=)/g, ' \\\n        ')}`);
    lines.push(`    # one launch (NeMo RL resumes from its newest checkpoint itself); a driver silent for run.hang_timeout_min (${ctx.config.run.hang_timeout_min} min) is treated as hung`);
    return lines;
  },
};

export { nrl };
