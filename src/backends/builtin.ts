/** The built-in trainer (`python -m grpo_trainer`, Python package under trainer/). */
import { join } from 'node:path';
import type { BackendAdapter, BackendContext, CommandSpec } from './types.js';
import { parseFailureJson, parseMetricsJsonLine } from './metrics.js';
import { clusterClientEnv, USER_RAY_TOKEN_ENV } from '../ray/head.js';
import { renderCommand } from '../common/shell.js';
import { trainerCommand } from '../common/trainer-command.js';
import { envsDir } from '../common/state.js';
import { lintBuiltin, rayWorkers } from './builtin-lint.js';
import { BACKEND_TRAITS } from './traits.js';

function trainerDir(ctx: BackendContext): string {
  return join(ctx.repoRoot, 'trainer');
}
function envDir(ctx: BackendContext): string {
  return join(envsDir(ctx.stateDir), 'builtin');
}
function python(ctx: BackendContext): string {
  return ctx.env?.python ?? join(envDir(ctx), 'bin', 'python');
}
function dataDir(ctx: BackendContext): string {
  return join(ctx.stateDir, 'data', `builtin-val${ctx.config.data.val_fraction}`);
}
function modelDir(ctx: BackendContext): string {
  const m = ctx.config.model;
  const safe = (v: string) => v.replace(/[^A-Za-z0-9._-]+/g, '--');
  if (m.source === 'hf') return join(ctx.stateDir, 'models', 'hub', safe(m.name ?? 'unnamed') + (m.revision ? `@${safe(m.revision)}` : ''));
  return join(ctx.stateDir, 'models', m.source === 'tiny-random' ? 'tiny-random' : 'smollm2-135m-instruct');
}

function wandbEnabled(ctx: BackendContext): boolean {
  return (ctx.config.trainer.logger as { wandb_enabled?: unknown } | undefined)?.wandb_enabled === true;
}

/** Overrides the pipeline always passes to the trainer (paths it owns). */
export function pipelineOverrides(ctx: BackendContext): string[] {
  const d = ctx.data ?? builtinBackend.data(ctx);
  return [
    `policy.model_name=${ctx.model?.modelDir ?? modelDir(ctx)}`,
    `data.train.data_path=${'train' in d ? d.train : ''}`,
    `data.validation.data_path=${'validation' in d ? d.validation : ''}`,
    `checkpointing.checkpoint_dir=${ctx.paths.checkpointDir}`,
    `logger.log_dir=${ctx.paths.logDir}`,
    // The pipeline sizes the Ray head, so it says how many workers train; the trainer checks they split a step.
    ...(ctx.config.ray.enabled && !ctx.config.ray.address && ctx.config.trainer.cluster.num_workers == null ? [`cluster.num_workers=${rayWorkers(ctx.config)}`] : []),
  ];
}

function cmd(ctx: BackendContext, label: string, args: string[], opts: { offline?: boolean; passEnv?: string[]; env?: Record<string, string> } = {}): CommandSpec {
  const c = trainerCommand(python(ctx), args, { offline: opts.offline ?? true });
  return { label, argv: c.argv, cwd: ctx.repoRoot, env: { ...c.env, ...(opts.env ?? {}) }, passEnv: opts.passEnv ?? [] };
}

export const builtinBackend: BackendAdapter = {
  name: 'builtin',
  ownSection: null,
  ...BACKEND_TRAITS.builtin,
  lint: lintBuiltin,
  missingEnvironmentMessage(file) {
    return `lock file ${file} is missing`;
  },
  planTraining(ctx, launch, ends, handoff) {
    const lines = [`    segments ending at steps ${ends.join(', ')} (one activity each; heartbeat ${ctx.config.run.heartbeat_timeout_s}s; up to ${ctx.config.run.max_attempts} attempts, each resuming from the newest checkpoint)`];
    lines.push(`    lock: ${join(ctx.paths.checkpointDir, '.grpo.lock')} + ${join(ctx.paths.checkpointDir, 'trainer.pid')}`);
    if (handoff && ends.length > 1)
      lines.push(`    one trainer process for all segments: it waits at each segment end (up to ${handoff.timeoutS}s) for the next segment to continue it (${handoff.dir})`);
    lines.push(renderCommand(launch).replace(`grpo.stop_after_step=${ends[0]}`, 'grpo.stop_after_step=<segment end>'));
    return lines;
  },
  environment(ctx) {
    const dir = envDir(ctx);
    const lock = join(trainerDir(ctx), 'requirements.lock');
    // torch and its Linux-only packages (CUDA libraries, triton), pinned without hashes: the wheel differs with the index.
    const torchPins = join(trainerDir(ctx), 'requirements-torch.txt');
    const index = ctx.config.environment.torch_index_url;
    const pip = join(dir, 'bin', 'pip');
    const step = (label: string, argv: string[]): CommandSpec => ({ label, argv, cwd: ctx.repoRoot, env: {}, passEnv: [] });
    return {
      kind: 'venv',
      dir,
      python: join(dir, 'bin', 'python'),
      lockFiles: [lock, torchPins],
      fingerprintExtra: `builtin|${ctx.config.environment.python}${index ? `|torch-index=${index}` : ''}`,
      build: [
        step('create venv', [ctx.config.environment.python, '-m', 'venv', dir]),
        step('install the locked requirements (hashed full closure without torch, so --no-deps)', [pip, 'install', '--disable-pip-version-check', '--require-hashes', '--no-deps', '-r', lock]),
        // From the index pip is configured with (plain PyPI: the CUDA build with its nvidia-* libraries, which also runs
        // without a GPU) or environment.torch_index_url; the lock already holds torch's other requirements.
        step(`install torch${index ? ` from ${index}` : ''} (requirements-torch.txt as constraints)`, [pip, 'install', '--disable-pip-version-check', ...(index ? ['--index-url', index] : []), '-c', torchPins, 'torch']),
      ],
    };
  },
  model(ctx) {
    const dir = modelDir(ctx);
    const args = ['prepare-model', '--out', dir];
    if (ctx.config.model.source === 'tiny-random') args.push('--tiny-random');
    if (ctx.config.model.source === 'hf') args.push('--source', `hub:${ctx.config.model.name}`, ...(ctx.config.model.revision ? ['--revision', ctx.config.model.revision] : []));
    // The download goes through the Hugging Face cache (HF_HOME / HF_HUB_CACHE of the worker's environment) and
    // resumes there; HF_ENDPOINT lets a worker use a Hub mirror; HF_TOKEN stays in the worker's environment.
    return { dir, command: cmd(ctx, 'prepare model', args, { offline: !!ctx.hubOffline, passEnv: ['HF_TOKEN', 'HF_ENDPOINT'] }) };
  },
  data(ctx) {
    const dir = dataDir(ctx);
    return {
      dir,
      train: join(dir, 'train.jsonl'),
      validation: join(dir, 'validation.jsonl'),
      manifest: join(dir, 'split_manifest.json'),
      command: cmd(ctx, 'prepare data', ['prepare-data', '--out-dir', dir, '--val-fraction', String(ctx.config.data.val_fraction)]),
    };
  },
  segmentHandoff: true,
  launch(ctx, stopAfterStep, handoff) {
    const env: Record<string, string> = {};
    if (ctx.ray) Object.assign(env, { RAY_ADDRESS: ctx.ray.address }, clusterClientEnv(ctx.ray));
    const wait = handoff ? [`grpo.segment_handoff_dir=${handoff.dir}`, `grpo.segment_handoff_timeout_s=${handoff.timeoutS}`] : [];
    return cmd(
      ctx,
      `train until step ${stopAfterStep}`,
      ['train', '--config', ctx.paths.trainerConfig, ...pipelineOverrides(ctx), ...(ctx.trainerOverrides ?? []), ...wait, `grpo.stop_after_step=${stopAfterStep}`],
      // WANDB_API_KEY reaches the trainer only when its config logs to W&B (trainer.logger.wandb_enabled).
      { passEnv: ['HF_TOKEN', ...(wandbEnabled(ctx) ? ['WANDB_API_KEY'] : []), ...(ctx.ray?.external ? [USER_RAY_TOKEN_ENV] : [])], env },
    );
  },
  evaluate(ctx, model, outPath) {
    const d = ctx.data ?? builtinBackend.data(ctx);
    const args = ['evaluate', '--model', model, '--tasks', d.validation, '--out', outPath];
    if (ctx.config.eval.limit) args.push('--limit', String(ctx.config.eval.limit));
    args.push('--config', ctx.paths.trainerConfig, ...pipelineOverrides(ctx), ...(ctx.trainerOverrides ?? []));
    return cmd(ctx, 'evaluate', args);
  },
  warmStartCommands(ctx, baseModel, dir) {
    const d = ctx.data ?? builtinBackend.data(ctx);
    const tracesFile = join(dir, 'traces.jsonl');
    const overrides = [...(ctx.trainerOverrides ?? [])];
    return {
      tracesFile,
      modelDir: join(dir, 'model'),
      resultFile: join(dir, 'warm_start.json'),
      failureFile: join(dir, 'failure.json'),
      metricsFile: join(dir, 'metrics.jsonl'),
      // Only the training split: traces of validation tasks would hand the evaluation its answers.
      traces: cmd(ctx, 'build traces', ['build-traces', '--tasks', d.train, '--out', tracesFile, '--tokenizer', baseModel, '--config', ctx.paths.trainerConfig, ...overrides]),
      train: cmd(ctx, 'warm start', ['warm-start', '--config', ctx.paths.trainerConfig, '--traces', tracesFile, '--model', baseModel, '--out', dir, ...overrides]),
    };
  },
  checkConfig(ctx) {
    // --skip-paths: model and data are prepared by later stages.
    return cmd(ctx, 'trainer check-config', ['check-config', '--skip-paths', '--config', ctx.paths.trainerConfig, ...pipelineOverrides(ctx)]);
  },
  preflight(ctx, workerEnv) {
    const mode = workerEnv.WANDB_MODE;
    const noKey = wandbEnabled(ctx) && !workerEnv.WANDB_API_KEY && mode !== 'offline' && mode !== 'disabled';
    return { errors: [], warnings: noKey ? ["trainer.logger.wandb_enabled is true but WANDB_API_KEY is not in the worker's environment: W&B stays off for this run (TensorBoard is unaffected)"] : [] };
  },
  preClean() {
    return [];
  },
  metricsFile(paths) {
    return join(paths.logDir, 'metrics.jsonl');
  },
  parseMetricsLine: parseMetricsJsonLine,
  failureFile(paths) {
    return join(paths.logDir, 'failure.json');
  },
  parseFailure: parseFailureJson,
};
