/** `grpo plan`: every stage with the exact commands and environment, running nothing. */
import { join } from 'node:path';
import { getBackend, type BackendContext, type CommandSpec } from '../backends/index.js';
import { nemoRlLaunchParts } from '../backends/nemo_rl.js';
import { handoffFor } from '../activities/handoff.js';
import type { LoadedConfig } from '../config/load.js';
import { REPO_ROOT, runPaths, stateDir } from '../common/state.js';
import { showSecretEnv } from '../common/redact.js';
import { TASK_QUEUE, TRAIN_TASK_QUEUE, type RayInfo } from '../common/types.js';
import { headArgv, headEnv, RAY_HEAD, rayTokenPath, USER_RAY_TOKEN_ENV } from '../ray/head.js';

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function renderCommand(c: CommandSpec, indent = '    '): string {
  const lines: string[] = [];
  if (c.note) lines.push(`${indent}# ${c.note}`);
  lines.push(`${indent}cd ${shellQuote(c.cwd)}`);
  const env = Object.entries(c.env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  const secrets = c.passEnv.map((n) => showSecretEnv(n));
  const prefix = [...env, ...secrets].map((e) => `${e} \\\n${indent}  `).join('');
  lines.push(`${indent}${prefix}${c.argv.map(shellQuote).join(' ')}`);
  return lines.join('\n');
}

export function renderPlan(loaded: LoadedConfig, runId = '<run-id>'): string {
  const cfg = loaded.config;
  const backend = getBackend(cfg.backend);
  const state = stateDir(cfg.state_dir);
  const paths = runPaths(state, runId);
  const ctx: BackendContext = { config: cfg, repoRoot: REPO_ROOT, stateDir: state, paths };
  const out: string[] = [];
  const total = cfg.trainer.grpo.max_num_steps;
  const seg = cfg.backend === 'nemo_rl' ? total : cfg.run.segment_steps;
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
    ...(cfg.backend === 'nemo_rl' ? ['    # the first launch after a rebuild sets NRL_FORCE_REBUILD_VENVS=true, later launches false'] : []),
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
  const evalSpec = backend.evaluate(ctx, model.dir, join(paths.evalDir, 'baseline.json'));
  stage(`baselineEval${cfg.eval.baseline ? '' : ' (skipped: eval.baseline=false)'}`, evalSpec ? [renderCommand(evalSpec)] : ['    (not supported by this backend)']);
  const bounds: number[] = [];
  for (let s = seg; s < total; s += seg) bounds.push(s);
  bounds.push(total);
  const handoff = handoffFor(cfg, paths.runDir);
  const launch = backend.launch({ ...ctx, ray }, bounds[0]!, handoff);
  const trainBody: string[] = [];
  if (cfg.backend === 'nemo_rl') {
    const pre = backend.preClean(ctx);
    trainBody.push('    # optional force-cleanup before a launch (ends processes the pipeline did not start; never run automatically):');
    for (const p of pre) trainBody.push(`    ${p.argv.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
    trainBody.push('    # launch (seed tutorial, single node), in ' + launch.cwd + ':');
    const parts = nemoRlLaunchParts(ctx);
    trainBody.push(...parts.preamble.map((l) => `    ${l}`));
    for (const [k, v] of Object.entries(launch.env)) trainBody.push(`    ${k}=${k === 'TORCH_CUDA_ARCH_LIST' ? `"${v}"` : v} \\`);
    for (const s of launch.passEnv) trainBody.push(`    ${showSecretEnv(s)} \\`);
    trainBody.push(`    ${parts.command.replace(' --config=', ' \\\n        --config=').replace(/ logger\./g, ' \\\n        logger.')}`);
    trainBody.push('    # needs a NeMo RL checkout (nemo_rl.repo_dir) and GPUs; one segment (NeMo RL resumes from its newest checkpoint itself)');
  } else {
    trainBody.push(`    segments ending at steps ${bounds.join(', ')} (one activity each; heartbeat ${cfg.run.heartbeat_timeout_s}s; up to ${cfg.run.max_attempts} attempts, each resuming from the newest checkpoint)`);
    trainBody.push(`    lock: ${join(paths.checkpointDir, '.grpo.lock')} + ${join(paths.checkpointDir, 'trainer.pid')}`);
    if (handoff && bounds.length > 1)
      trainBody.push(`    one trainer process for all segments: it waits at each segment end (up to ${handoff.timeoutS}s) for the next segment to continue it (${handoff.dir})`);
    trainBody.push(renderCommand(launch).replace(`grpo.stop_after_step=${bounds[0]}`, 'grpo.stop_after_step=<segment end>'));
  }
  stage(`train: ${cfg.backend === 'nemo_rl' ? `up to ${total} steps (bounded by grpo.max_num_epochs)` : `${total} steps`}`, trainBody);
  const c = cfg.trainer.checkpointing;
  stage(`checkpoint bookkeeping after each segment: keep top ${c.keep_top_k} by ${c.metric_name} (${c.higher_is_better ? 'higher' : 'lower'} is better) plus the newest; tmp_step_N is never counted or deleted`, [
    `    checkpoints: ${paths.checkpointDir}/step_N (save_period ${c.save_period}, val_period ${cfg.trainer.grpo.val_period})`,
  ]);
  const fin = backend.evaluate(ctx, join(paths.checkpointDir, 'step_<best>'), join(paths.evalDir, 'final.json'));
  stage(`finalEval of the best checkpoint${cfg.eval.final ? '' : ' (skipped: eval.final=false)'}`, fin ? [renderCommand(fin)] : ['    (not supported by this backend)']);
  stage('summary', [`    ${paths.summaryJson}`, `    ${paths.summaryText}`]);
  stage('cleanup: stop the Ray head this run started and remove its token; end only processes it started', []);
  return out.join('\n');
}
