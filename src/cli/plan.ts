/** `grpo plan`: every stage with the exact commands and environment, running nothing. */
import { join } from 'node:path';
import { getBackend, type BackendContext } from '../backends/index.js';
import { handoffFor } from '../process/handoff.js';
import type { LoadedConfig } from '../config/load.js';
import { REPO_ROOT, runPaths, stateDir } from '../common/state.js';
import { showSecretEnv } from '../common/redact.js';
import { renderCommand } from '../common/shell.js';
import { TASK_QUEUE, TRAIN_TASK_QUEUE, type RayInfo } from '../common/types.js';
import { headArgv, headEnv, RAY_HEAD, rayTokenPath, USER_RAY_TOKEN_ENV } from '../ray/head.js';

export function renderPlan(loaded: LoadedConfig, runId = '<run-id>'): string {
  const cfg = loaded.config;
  const backend = getBackend(cfg.backend);
  const state = stateDir(cfg.state_dir);
  const paths = runPaths(state, runId);
  const ctx: BackendContext = { config: cfg, repoRoot: REPO_ROOT, stateDir: state, paths };
  const out: string[] = [];
  const total = cfg.trainer.grpo.max_num_steps;
  const seg = backend.singleLaunch ? total : cfg.run.segment_steps;
  out.push(`Plan for ${loaded.source ?? 'inline config'} (backend ${cfg.backend}); nothing is run.`);
  out.push(`State dir: ${state}   run dir: ${paths.runDir}`);
  out.push(`Task queues: ${TASK_QUEUE} (workflow + light activities), ${TRAIN_TASK_QUEUE} (training/evaluation, one at a time per worker)`);
  for (const w of loaded.warnings) out.push(`WARNING: ${w}`);
  out.push('');
  let n = 1;
  const stage = (title: string, body: string[]) => {
    out.push(`${n++}. ${title}`);
    for (const b of body) out.push(b);
    out.push('');
  };
  stage('validate: config (zod), secrets refused, run dir created; trainer section written to', [`    ${paths.trainerConfig}`]);
  const env = backend.environment(ctx);
  stage(`prepareEnvironment: ${env.kind} at ${env.dir}; rebuilt only when the fingerprint of ${env.lockFiles.map((f) => f.replace(REPO_ROOT + '/', '')).join(', ')} changes (or force)`, [
    ...env.build.map((c) => renderCommand(c)),
    ...(backend.forcedVenvRebuild ? ['    # the first launch after a rebuild sets NRL_FORCE_REBUILD_VENVS=true, later launches false'] : []),
    ...(backend.checkConfig(ctx) ? ['    # then the trainer validates its own section:', renderCommand(backend.checkConfig(ctx)!)] : []),
  ]);
  const data = backend.data(ctx);
  stage(`prepareData: ${data.dir}`, data.command ? [renderCommand(data.command)] : [`    (provided by the backend: ${data.train}, ${data.validation})`]);
  const model = backend.model(ctx);
  stage(`fetchModel: ${model.dir} (heartbeats; HF token only from the worker's environment; later stages run with HF_HUB_OFFLINE=1)`, model.command ? [renderCommand(model.command)] : [`    (NeMo RL downloads policy.model_name into HF_HOME=${cfg.nemo_rl?.hf_home} itself)`]);
  const tokenPath = rayTokenPath(paths.runDir);
  const ray: RayInfo | null = !cfg.ray.enabled
    ? null
    : cfg.ray.address
      ? { address: cfg.ray.address, pid: 0, tempDir: '', numCpus: cfg.ray.num_cpus, numGpus: cfg.ray.num_gpus, external: true }
      : { address: '127.0.0.1:<ray port>', pid: 0, tempDir: '', numCpus: cfg.ray.num_cpus, numGpus: cfg.ray.num_gpus, authTokenPath: tokenPath };
  if (ray?.external)
    stage(`startRay: the user's Ray cluster at ${ray.address} (ray.address; never started or stopped by the pipeline): \`ray status\` with the token from the worker's environment, and a warning if it also answers without one`, [
      `    token: ${showSecretEnv(USER_RAY_TOKEN_ENV)} or RAY_AUTH_TOKEN_PATH=${process.env.RAY_AUTH_TOKEN_PATH ?? '<unset>'}`,
    ]);
  else if (ray)
    stage(`startRay: Ray head on loopback with token authentication, its own temp dir and free ports; waits for ${cfg.ray.num_cpus} CPU / ${cfg.ray.num_gpus} GPU in \`ray status\`, exports RAY_ADDRESS`, [
      `    # a fresh random token per head (a restarted head gets a new one), owner-only in ${tokenPath}; its value is never shown, logged or stored in the workflow; removed at cleanup`,
      renderCommand({
        label: 'ray head',
        argv: headArgv(join(env.dir, 'bin', 'ray'), { ports: RAY_HEAD.port_flags.map(() => '<free>'), tempDir: '/tmp/grpo-ray-<hash>', numCpus: cfg.ray.num_cpus, numGpus: cfg.ray.num_gpus }),
        cwd: paths.runDir,
        env: headEnv(tokenPath),
        passEnv: [],
      }),
    ]);
  else stage('startRay: skipped (ray.enabled=false)', []);
  const evalSpec = backend.evaluate(ctx, model.ref ?? model.dir, join(paths.evalDir, 'baseline.json'));
  stage(`baselineEval${cfg.eval.baseline ? '' : ' (skipped: eval.baseline=false)'}`, evalSpec ? [renderCommand(evalSpec)] : ['    (not supported by this backend)']);
  const warm = cfg.trainer.warm_start?.enabled ? backend.warmStartCommands?.(ctx, model.ref ?? model.dir, join(ctx.stateDir, 'warm', '<key>')) : undefined;
  if (warm)
    stage('warmStart: verified traces of the training split, supervised fine-tuning (reused when the same model, data and settings were already warmed), then its evaluation; GRPO starts from its model', [
      renderCommand(warm.traces),
      renderCommand(warm.train),
    ]);
  else stage(`warmStart: skipped (${cfg.trainer.warm_start?.enabled ? `not supported by backend ${cfg.backend}` : 'trainer.warm_start.enabled is false'})`, []);
  const bounds: number[] = [];
  for (let s = seg; s < total; s += seg) bounds.push(s);
  bounds.push(total);
  const handoff = handoffFor(cfg, paths.runDir);
  const launch = backend.launch({ ...ctx, ray }, bounds[0]!, handoff);
  const trainBody = backend.planTraining(ctx, launch, bounds, handoff);
  stage(`train: ${backend.singleLaunch ? `up to ${total} steps (bounded by grpo.max_num_epochs)` : `${total} steps`}`, trainBody);
  const c = cfg.trainer.checkpointing;
  stage(`checkpoint bookkeeping after each segment: the trainer keeps the top ${c.keep_top_k} by ${c.metric_name} (${c.higher_is_better ? 'higher' : 'lower'} is better) plus the newest; the pipeline reads step_N/training_info.json, picks the best and checks that (tmp_step_N is never counted)`, [
    `    checkpoints: ${paths.checkpointDir}/step_N (save_period ${c.save_period}, val_period ${cfg.trainer.grpo.val_period})`,
  ]);
  const fin = backend.evaluate(ctx, join(paths.checkpointDir, 'step_<best>'), join(paths.evalDir, 'final.json'));
  stage(`finalEval of the best checkpoint${cfg.eval.final ? '' : ' (skipped: eval.final=false)'}`, fin ? [renderCommand(fin)] : ['    (not supported by this backend)']);
  stage('summary', [`    ${paths.summaryJson}`, `    ${paths.summaryText}`]);
  stage('cleanup: stop the Ray head this run started and remove its token; end only processes it started', []);
  return out.join('\n');
}
