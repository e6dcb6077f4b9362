/**
 * The baselineEval and finalEval stages (and the warm start's evaluation, within warmStart):
 * workplace accuracy of a model on the validation tasks, with per-task results for paired comparison.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { getBackend } from '../backends/index.js';
import { attempt, confirmCancel, reportProgress } from '../common/activity-context.js';
import type { DataInfo, EnvInfo, EvalResult, ModelInfo, RayInfo, ResolvedRun, StageName } from '../common/types.js';
import { runTracked } from '../process/supervise.js';
import { failureFromTrainer } from './failure.js';
import { backendCtx } from './support.js';

export async function evaluate(input: { run: ResolvedRun; env: EnvInfo; data: DataInfo; model: ModelInfo; ray: RayInfo | null; which: 'baseline' | 'warm' | 'final' | 'promoted'; modelPath: string }): Promise<EvalResult | null> {
  const { run, env, data, model, ray } = input;
  const backend = getBackend(run.config.backend);
  const outPath = join(run.paths.evalDir, `${input.which}.json`);
  const spec = backend.evaluate(backendCtx(run, { env, data, model, ray }), input.modelPath, outPath);
  if (!spec) return null;
  const stage: StageName = input.which === 'baseline' ? 'baselineEval' : input.which === 'warm' ? 'warmStart' : input.which === 'promoted' ? 'promote' : 'finalEval';
  await reportProgress({ stage, attempt: attempt() }, { force: true });
  await rm(outPath, { force: true });
  await rm(join(run.paths.evalDir, 'failure.json'), { force: true });
  const r = await runTracked(spec, join(run.paths.logDir, `eval-${input.which}.log`), { tickMs: 3000, onTick: () => ({ stage, model: input.modelPath }) });
  if (r.cancelled) confirmCancel();
  if (r.code !== 0 || !existsSync(outPath)) await failureFromTrainer(run, stage, r, `evaluate (${input.which})`, { failurePath: join(run.paths.evalDir, 'failure.json') });
  const o = JSON.parse(await readFile(outPath, 'utf8')) as { accuracy: number; per_category?: Record<string, number>; num_tasks?: number };
  return { accuracy: o.accuracy, perCategory: o.per_category ?? {}, numTasks: o.num_tasks ?? 0, outPath, model: input.modelPath };
}
