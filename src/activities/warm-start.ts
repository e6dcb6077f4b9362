/**
 * The warmStart stage: verified tool-calling traces of the training split, then a supervised
 * fine-tune (TRL's SFTTrainer, in the trainer) from the base model. GRPO starts from its result.
 *
 * The work lives in <state>/warm/<key>, keyed by what it is made from, so a later run with the same
 * model, data and settings finds it done. The trainer owns the real fingerprint (warm_start.json):
 * it reuses a finished warm start of identical inputs and resumes an interrupted one from its newest
 * checkpoint, so this stage only picks the directory, holds its lock and reports.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getBackend } from '../backends/index.js';
import { attempt, confirmCancel, reportProgress } from '../common/activity-context.js';
import type { DataInfo, EnvInfo, ModelInfo, ResolvedRun, WarmStartInfo } from '../common/types.js';
import { ApplicationFailure } from '@temporalio/activity';
import { CheckpointLock, LockBusyError } from '../process/lock.js';
import { runTracked } from '../process/supervise.js';
import { failureFromTrainer } from './failure.js';
import { backendCtx } from './support.js';

/** The cache key of a warm start: everything the trainer's fingerprint covers, and the data it reads. */
export function warmStartKey(run: ResolvedRun, model: ModelInfo, data: DataInfo): string {
  const t = run.config.trainer as Record<string, unknown> & { data?: { categories?: unknown }; grpo?: { seed?: unknown }; policy?: { precision?: unknown } };
  const inputs = {
    model: [model.modelDir, model.fingerprint],
    train: data.train,
    warm_start: t.warm_start ?? null,
    env: t.env ?? null,
    categories: t.data?.categories ?? null,
    seed: t.grpo?.seed ?? null,
    precision: t.policy?.precision ?? null,
    overrides: run.trainerOverrides ?? [],
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

/** The last JSON object a command printed on stdout (its result line). */
function lastJsonLine(tail: string): Record<string, unknown> | null {
  for (const line of tail.trim().split('\n').reverse()) {
    if (!line.trim().startsWith('{')) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      /* a log line that happens to start with a brace */
    }
  }
  return null;
}

/** The newest progress record of the warm start (metrics.jsonl), for heartbeats and the stage detail. */
async function latestProgress(metricsFile: string): Promise<{ step: number; total: number; loss: number | null } | null> {
  try {
    const lines = (await readFile(metricsFile, 'utf8')).trim().split('\n');
    const r = JSON.parse(lines.at(-1) ?? '') as { step?: number; total_steps?: number; loss?: number };
    return typeof r.step === 'number' ? { step: r.step, total: r.total_steps ?? 0, loss: r.loss ?? null } : null;
  } catch {
    return null;
  }
}

export async function warmStart(input: { run: ResolvedRun; env: EnvInfo; data: DataInfo; model: ModelInfo }): Promise<WarmStartInfo> {
  const { run, env, data, model } = input;
  const backend = getBackend(run.config.backend);
  if (!backend.warmStartCommands) throw new Error(`backend ${backend.name} has no warm start`);
  const dir = join(run.paths.stateDir, 'warm', warmStartKey(run, model, data));
  const c = backend.warmStartCommands(backendCtx(run, { env, data, model }), model.modelDir, dir);
  await reportProgress({ stage: 'warmStart', attempt: attempt(), stageDetail: `warm start in ${dir}` }, { force: true });
  // Two runs of the same inputs at once would train into one directory: the second waits its turn
  // (a retry), then finds the first one's result.
  const lock = await CheckpointLock.acquire(dir, run.runId, 'warmStart', { staleAfterMs: run.config.run.heartbeat_timeout_s * 3000 }).catch((e: unknown) => {
    if (e instanceof LockBusyError) throw ApplicationFailure.create({ type: 'WarmStartBusy', message: `${e.message} (another run is warming the same model; retrying)`, nextRetryDelay: '20s' });
    throw e;
  });
  try {
    const reportFile = join(dir, 'traces-report.json');
    if (!existsSync(c.tracesFile) || !existsSync(reportFile)) {
      const r = await runTracked(c.traces, join(run.paths.logDir, 'warm-traces.log'), { tickMs: 3000, onTick: () => ({ stage: 'warmStart', label: c.traces.label }) });
      if (r.cancelled) confirmCancel();
      const report = r.code === 0 ? lastJsonLine(r.tail) : null;
      if (!report) await failureFromTrainer(run, 'warmStart', r, 'build-traces', { failurePath: c.failureFile });
      await writeFile(reportFile, JSON.stringify(report, null, 2) + '\n');
    }
    const traces = JSON.parse(await readFile(reportFile, 'utf8')) as { tasks?: number; traced?: number };

    const startedAtMs = Date.now();
    const r = await runTracked(c.train, join(run.paths.logDir, 'warm-start.log'), {
      tickMs: 3000,
      onTick: async () => {
        await lock.renew();
        const p = await latestProgress(c.metricsFile);
        if (p) await reportProgress({ stage: 'warmStart', attempt: attempt(), stageDetail: `warm start step ${p.step}/${p.total}${p.loss !== null ? `, loss ${p.loss.toFixed(4)}` : ''}` }, { minIntervalMs: 15_000 });
        return { stage: 'warmStart', dir, ...(p ?? {}) };
      },
    });
    if (r.cancelled) confirmCancel();
    const result = r.code === 0 ? lastJsonLine(r.tail) : null;
    if (!result || result.status !== 'ok') return await failureFromTrainer(run, 'warmStart', r, 'warm-start', { failurePath: c.failureFile, startedAtMs });
    return {
      model: { modelDir: String(result.model_dir ?? c.modelDir), fingerprint: String(result.fingerprint) },
      dir,
      reused: result.reused === true,
      traces: Number(result.examples ?? traces.traced ?? 0),
      tasks: Number(traces.tasks ?? 0),
      steps: Number(result.steps ?? 0),
      seconds: Number(result.seconds ?? 0),
      finalLoss: typeof result.final_loss === 'number' ? result.final_loss : null,
    };
  } finally {
    await lock.release();
  }
}
