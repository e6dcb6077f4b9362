/** The fetchModel stage: convert or download the model into the state dir's model cache (heartbeats; HF token only from the worker's environment). */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { getBackend } from '../backends/index.js';
import { confirmCancel } from '../common/activity-context.js';
import type { EnvInfo, ModelInfo, ResolvedRun } from '../common/types.js';
import { runTracked } from '../process/supervise.js';
import { failureFromTrainer } from './failure.js';
import { backendCtx } from './support.js';

/** Convert / download the model into the state dir's model cache (HF token from the worker env). */
export async function fetchModel(input: { run: ResolvedRun; env: EnvInfo }): Promise<ModelInfo> {
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
