/**
 * The commands a NeMo RL run is made of, spelled as the tutorial spells them: `uv run python
 * <run script> --config=$CONFIG_PATH <Hydra overrides>` in the checkout, locally or as the COMMAND
 * of `sbatch ray.sub`. Everything the pipeline decides reaches NeMo RL as an override: the run's
 * own checkpoint and log dirs, TensorBoard on, the `trainer:` section, the cluster size, the
 * recovery policies' changes and the user's extra overrides.
 */
import { join } from 'node:path';
import { shellQuote } from '../../common/shell.js';
import { REPO_ROOT } from '../../common/state.js';
import type { BackendContext, CommandSpec } from '../types.js';
import { keyFor, leaves, override, respell } from './recipe.js';
import { expName, hfHome, layoutOf, nemoLogDir, nrl, recipeOf, repoDir } from './settings.js';

/** Keys the pipeline sets itself (per run); a `trainer:` value for them is not passed on. */
const PIPELINE_KEYS = new Set(['checkpointing.checkpoint_dir', 'logger.log_dir', 'logger.tensorboard_enabled']);

/** Every override of a launch, in order (later ones win in Hydra), as shell words. */
export function nemoRlOverrides(ctx: BackendContext): string[] {
  const recipe = recipeOf(ctx);
  const n = nrl(ctx);
  const out = [
    // The seed's two W&B names stay shell words that bash expands at launch (${USER}, $EXP_NAME).
    `${keyFor(recipe, 'logger.wandb.project')}="${n.wandb_project}"`,
    `${keyFor(recipe, 'logger.wandb.name')}=$EXP_NAME`,
  ];
  const plain = [
    override(recipe, 'logger.log_dir', nemoLogDir(ctx)),
    override(recipe, 'checkpointing.checkpoint_dir', ctx.paths.checkpointDir),
    override(recipe, 'logger.tensorboard_enabled', true),
  ];
  for (const [k, v] of leaves(ctx.config.trainer as Record<string, unknown>)) if (!PIPELINE_KEYS.has(k) && v !== undefined) plain.push(override(recipe, k, v));
  // A pinned model.revision: the snapshot directory fetchModel downloaded (NeMo RL would load the Hub's main).
  if (ctx.config.model.revision && ctx.model?.modelDir.startsWith('/')) plain.push(override(recipe, 'policy.model_name', ctx.model.modelDir));
  for (const o of n.overrides) plain.push(respell(recipe, o));
  for (const o of ctx.trainerOverrides ?? []) plain.push(respell(recipe, o));
  return [...out, ...plain.map(shellQuote)];
}

/** The environment of a launch (no secrets: those are passed through by name). */
export function launchEnv(ctx: BackendContext): Record<string, string> {
  const n = nrl(ctx);
  return {
    TORCH_CUDA_ARCH_LIST: n.torch_cuda_arch_list,
    HF_HOME: hfHome(ctx),
    // Only the first launch after the pipeline rebuilt the environment rebuilds NeMo RL's actor venvs.
    NRL_FORCE_REBUILD_VENVS: ctx.env ? String(ctx.env.nrlForceRebuildVenvs) : 'true',
    // The rate-limit policy sets this once the model is in HF_HOME (seed troubleshooting table).
    ...(ctx.hubOffline ? { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' } : {}),
  };
}

export const SECRETS = ['HF_TOKEN', 'WANDB_API_KEY'];

/** The launch as lines of a shell script: the seed's EXP_NAME / CONFIG_PATH preamble, then the command. */
export function launchLines(ctx: BackendContext): { preamble: string[]; command: string } {
  const l = layoutOf(ctx);
  return {
    preamble: [`EXP_NAME="${expName(ctx)}"`, `CONFIG_PATH=${shellQuote(l.configPath)}`],
    command: ['uv run python', shellQuote(l.script), '--config=$CONFIG_PATH', ...nemoRlOverrides(ctx)].join(' '),
  };
}

export function localLaunch(ctx: BackendContext): CommandSpec {
  const { preamble, command } = launchLines(ctx);
  return { label: `NeMo RL GRPO (${layoutOf(ctx).layout} layout, one node)`, argv: ['bash', '-c', [...preamble, command].join('\n')], cwd: repoDir(ctx), env: launchEnv(ctx), passEnv: SECRETS };
}

/** ray.sub's COMMAND: one line run inside the job's container from the submit dir. */
export function slurmCommand(ctx: BackendContext): string {
  const { preamble, command } = launchLines(ctx);
  const env = Object.entries(launchEnv(ctx)).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [`cd ${shellQuote(repoDir(ctx))}`, ...preamble, `${env.join(' ')} ${command}`].join(' && ');
}

/** Where ray.sub writes `<job id>-logs/ray-driver.log` (BASE_LOG_DIR; on the shared file system with the run dir). */
export const slurmLogBase = (ctx: BackendContext) => join(ctx.paths.logDir, 'slurm');

/** `sbatch ... ray.sub` for this run; `resubmit` waits for any earlier job of the run (singleton). */
export function sbatchSpec(ctx: BackendContext, opts: { resubmit: boolean }): CommandSpec {
  const n = nrl(ctx);
  const s = n.slurm;
  const { num_nodes: nodes, gpus_per_node: gpus } = ctx.config.trainer.cluster;
  const argv = [
    'sbatch', '--parsable', `--nodes=${nodes}`, ...(gpus > 0 ? [`--gres=gpu:${gpus}`] : []), `--time=${s.time}`, `--job-name=${jobName(ctx)}`,
    ...(s.account ? [`--account=${s.account}`] : []), ...(s.partition ? [`--partition=${s.partition}`] : []),
    ...(opts.resubmit ? ['--dependency=singleton'] : []), ...s.extra_args,
    s.ray_sub.startsWith('/') ? s.ray_sub : join(repoDir(ctx), s.ray_sub),
  ];
  return {
    label: `sbatch ray.sub (${nodes} node${nodes > 1 ? 's' : ''} x ${gpus} GPUs)`,
    argv,
    cwd: repoDir(ctx),
    // The checkout and the state dir at their own paths: COMMAND and the logs name them as the host does.
    env: { COMMAND: slurmCommand(ctx), CONTAINER: s.container, MOUNTS: s.mounts || `${repoDir(ctx)}:${repoDir(ctx)},${ctx.stateDir}:${ctx.stateDir}`, GPUS_PER_NODE: String(gpus), BASE_LOG_DIR: slurmLogBase(ctx) },
    passEnv: SECRETS,
  };
}

/** One job name per run: `--dependency=singleton` then orders a resubmission after the old job. */
export function jobName(ctx: BackendContext): string {
  return `grpo-${ctx.paths.runDir.split('/').filter(Boolean).at(-1)}`.slice(0, 120);
}

/**
 * `hf download` of the policy into HF_HOME in the checkout's venv (Hugging Face's cache: finished files
 * stay there, so a retry fetches only the rest), then the tutorial's tokenizer edits. With
 * model.revision the snapshot directory of that revision is printed as `{"model_dir": ...}`: NeMo RL is then
 * given that directory as policy.model_name (it has no revision setting of its own).
 */
export function modelDownload(ctx: BackendContext, modelId: string): CommandSpec {
  const edits = join(REPO_ROOT, 'trainer', 'grpo_trainer', 'tools', 'nemotron_tokenizer.py');
  const revision = ctx.config.model.revision;
  const steps = [`uv run hf download ${shellQuote(modelId)}${revision ? ` --revision ${shellQuote(revision)}` : ''}`];
  if (nrl(ctx).tokenizer_edits) steps.push(`uv run python ${shellQuote(edits)} --hf-home "$HF_HOME" --model ${shellQuote(modelId)}`);
  // The snapshot directory of the revision, as huggingface_hub itself resolves it from the cache (no download).
  const snapshot = "import json, sys; from huggingface_hub import snapshot_download; print(json.dumps({'model_dir': snapshot_download(sys.argv[1], revision=sys.argv[2], local_files_only=True)}))";
  if (revision) steps.push(`uv run python -c ${shellQuote(snapshot)} ${shellQuote(modelId)} ${shellQuote(revision)}`);
  return {
    label: `hf download ${modelId}${revision ? `@${revision}` : ''}`,
    argv: ['bash', '-c', steps.join(' && ')],
    cwd: repoDir(ctx),
    env: { HF_HOME: hfHome(ctx) },
    passEnv: ['HF_TOKEN', 'HF_ENDPOINT'],
  };
}

/**
 * Workplace accuracy of a model through NeMo RL itself: a trajectory-collection run (NeMo Gym
 * rollouts, no training) on the validation tasks. A checkpoint is first converted to a Hugging Face
 * dir with NeMo RL's Megatron converter. The rewards become <outPath> (stdlib-only script).
 */
export function evaluation(ctx: BackendContext, model: string, outPath: string, tasks: string, limit: number | null): CommandSpec {
  const l = layoutOf(ctx);
  const which = outPath.split('/').at(-1)!.replace(/\.json$/, '');
  const logDir = join(ctx.paths.evalDir, `nemo_rl-${which}`);
  // An empty checkpoint dir of its own: NeMo RL loads the newest step_N of its checkpoint dir in every mode.
  const ckptDir = join(ctx.paths.evalDir, `nemo_rl-${which}-checkpoints`);
  const taskFile = join(ctx.paths.evalDir, `tasks-${which}.jsonl`);
  const isCheckpoint = /\/step_\d+\/?$/.test(model);
  const hf = join(ctx.paths.evalDir, 'hf', model.split('/').filter(Boolean).at(-1)!);
  const lines = [
    `mkdir -p ${shellQuote(ctx.paths.evalDir)}`,
    `rm -rf ${shellQuote(ckptDir)}`,
    limit ? `head -n ${limit} ${shellQuote(tasks)} > ${shellQuote(taskFile)}` : `cp ${shellQuote(tasks)} ${shellQuote(taskFile)}`,
    ...(isCheckpoint
      ? [`[ -f ${shellQuote(join(hf, 'config.json'))} ] || uv run --extra mcore python examples/converters/convert_megatron_to_hf.py --config ${shellQuote(join(model, 'config.yaml'))} --megatron-ckpt-path ${shellQuote(join(model, 'policy', 'weights', 'iter_0000000'))} --hf-ckpt-path ${shellQuote(hf)}`]
      : []),
    [
      'uv run python', shellQuote(l.script), `--config=${shellQuote(l.configPath)}`,
      '++env.nemo_gym.is_trajectory_collection=true', shellQuote(`++policy.model_name=${isCheckpoint ? hf : model}`),
      shellQuote(`++data.validation.data_path=${taskFile}`), shellQuote(`++logger.log_dir=${logDir}`), shellQuote(`++checkpointing.checkpoint_dir=${ckptDir}`), '++logger.wandb_enabled=false',
      ...nrl(ctx).overrides.map((o) => shellQuote(respell(recipeOf(ctx), o))),
    ].join(' '),
    `uv run python ${shellQuote(join(REPO_ROOT, 'trainer', 'grpo_trainer', 'tools', 'trajectory_accuracy.py'))} --log-dir ${shellQuote(logDir)} --tasks ${shellQuote(taskFile)} --out ${shellQuote(outPath)}`,
  ];
  return { label: `NeMo RL evaluation (${which})`, argv: ['bash', '-c', ['set -euo pipefail', ...lines].join('\n')], cwd: repoDir(ctx), env: { ...launchEnv(ctx), NRL_FORCE_REBUILD_VENVS: 'false' }, passEnv: ['HF_TOKEN'] };
}
