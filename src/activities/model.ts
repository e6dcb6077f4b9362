/**
 * The fetchModel stage: the model training starts from. The base model is converted or downloaded
 * into the state dir's model cache (heartbeats; HF token only from the worker's environment);
 * with init_from: promoted it is the promotion line's current export (src/promotion/registry.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { getBackend } from '../backends/index.js';
import { confirmCancel, log } from '../common/activity-context.js';
import type { EnvInfo, ModelInfo, ResolvedRun } from '../common/types.js';
import { runTracked } from '../process/supervise.js';
import { baseModelName, readCurrent } from '../promotion/registry.js';
import { failureFromTrainer } from './failure.js';
import { backendCtx } from './support.js';

/**
 * The model training starts from. init_from: promoted → the line's promoted export (when there is
 * one of the same base model); otherwise the base model, converted / downloaded into the state
 * dir's model cache (HF token from the worker env), with a warning saying why when promoted was asked for.
 */
export async function fetchModel(input: { run: ResolvedRun; env: EnvInfo }): Promise<ModelInfo> {
  let warning: string | undefined;
  if (input.run.config.init_from === 'promoted') {
    const p = await promotedStart(input.run);
    if ('model' in p) return p.model;
    warning = p.warning;
  }
  const base = await fetchBaseModel(input);
  return { ...base, initFrom: 'base', ...(warning ? { warning } : {}) };
}

/** The promoted model as the starting point, or why the base model is used instead. */
async function promotedStart(run: ResolvedRun): Promise<{ model: ModelInfo } | { warning: string }> {
  const line = run.config.promotion.line;
  const fallback = 'init_from: promoted, but';
  if (!getBackend(run.config.backend).runsTrainerTools) return { warning: `${fallback} backend ${run.config.backend} cannot start from a promoted export; starting from the base model` };
  const p = readCurrent(run.paths.stateDir, line);
  if (!p) return { warning: `${fallback} line ${line} has no promoted model yet; starting from the base model` };
  const manifest = join(p.modelDir, 'grpo_export.json');
  if (!existsSync(join(p.modelDir, 'config.json')) || !existsSync(manifest))
    return { warning: `${fallback} the promoted model of line ${line} (${p.runId} step ${p.step}) is missing its export ${p.modelDir}; starting from the base model` };
  const wanted = baseModelName(run.config.model);
  if (p.baseModel !== wanted) return { warning: `${fallback} the promoted model of line ${line} (${p.runId} step ${p.step}) was trained from ${p.baseModel}, not ${wanted}; starting from the base model` };
  const fingerprint = createHash('sha256').update(await readFile(manifest)).update(`\0${p.runId}\0${p.step}`).digest('hex').slice(0, 16);
  log('info', `init_from: promoted: starting from ${p.runId} step ${p.step} of line ${line}`, { modelDir: p.modelDir });
  return { model: { modelDir: p.modelDir, fingerprint, initFrom: 'promoted', promoted: { line, runId: p.runId, step: p.step } } };
}

async function fetchBaseModel(input: { run: ResolvedRun; env: EnvInfo }): Promise<ModelInfo> {
  const { run, env } = input;
  const m = getBackend(run.config.backend).model(backendCtx(run, { env }));
  if (!m.command) return { modelDir: m.ref ?? m.dir, fingerprint: 'external' };
  await mkdir(join(m.dir, '..'), { recursive: true });
  const modelFailure = join(m.dir, '..', 'failure.json');
  await rm(modelFailure, { force: true });
  const logFile = join(run.paths.logDir, 'fetch-model.log');
  const r = await runTracked(m.command, logFile, { tickMs: 3000, onTick: () => ({ stage: 'fetchModel', modelDir: m.dir }) });
  if (r.cancelled) confirmCancel();
  if (r.code !== 0) await failureFromTrainer(run, 'fetchModel', r, 'prepare-model', { failurePath: modelFailure, modelCached: existsSync(join(m.dir, 'config.json')) });
  const lastJson = r.tail
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  let fingerprint = 'unknown';
  let modelDir = m.ref ?? m.dir;
  if (lastJson) {
    try {
      const o = JSON.parse(lastJson) as { model_dir?: string; fingerprint?: string };
      if (o.fingerprint) fingerprint = o.fingerprint;
      if (o.model_dir) modelDir = resolve(o.model_dir);
    } catch {
      /* keep defaults */
    }
  }
  return { modelDir, fingerprint };
}
