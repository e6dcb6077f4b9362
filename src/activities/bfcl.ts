/**
 * BFCL v3 evaluation of one model (the base model before training, the best checkpoint after):
 * `python -m grpo_trainer bfcl` in the BFCL environment (trainer/requirements-bfcl.lock, a venv of
 * its own under <state>/envs/bfcl because bfcl-eval pins numpy 1.26), which exports the model,
 * serves it with the trainer environment's python (`grpo_trainer serve`, OpenAI-compatible) and
 * runs bfcl-eval's generation and checkers. Writes <runDir>/bfcl/<which>/bfcl.json.
 *
 * Activity `bfclEvaluate` (heavy: train task queue). It builds the BFCL environment on first use
 * (src/environment/bfcl.ts), heartbeats while it runs, and stops the whole process group (server
 * included) when cancelled.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { getBackend } from '../backends/index.js';
import type { CommandSpec } from '../backends/types.js';
import type { PipelineConfig } from '../config/schema.js';
import { REPO_ROOT } from '../common/state.js';
import { trainerCommand } from '../common/trainer-command.js';
import type { EnvInfo, ResolvedRun } from '../common/types.js';
import { log } from '../common/activity-context.js';
import { ensureBfclEnvironment } from '../environment/bfcl.js';
import { runTracked } from '../process/supervise.js';

export interface BfclCategoryResult {
  accuracy: number;
  correct: number;
  total: number;
}

export interface BfclResult {
  which: 'baseline' | 'warm' | 'final';
  model: string;
  outPath: string;
  package: string;
  version: string;
  dataVersion: string;
  overall: BfclCategoryResult;
  categories: Record<string, BfclCategoryResult>;
  seconds: number;
}

/** Whether the first turn is prefilled: bfcl.prefill_tool_call, else the trainer's env setting. */
export function bfclPrefill(config: PipelineConfig): boolean {
  if (config.bfcl.prefill_tool_call !== null) return config.bfcl.prefill_tool_call;
  const env = (config.trainer.env ?? {}) as { workplace_assistant?: { prefill_tool_call?: unknown } };
  return env.workplace_assistant?.prefill_tool_call === true;
}

/** The `python -m grpo_trainer bfcl` command for one model. */
export function bfclCommand(config: PipelineConfig, opts: { bfclPython: string; trainerPython: string; modelPath: string; outDir: string; which: string }): CommandSpec {
  const b = config.bfcl;
  const args = [
    'bfcl',
    '--model', opts.modelPath,
    '--out', opts.outDir,
    '--trainer-python', opts.trainerPython,
    '--categories', b.categories.join(','),
    '--limit', String(b.limit),
    '--temperature', String(b.temperature),
    '--max-tokens', String(b.max_tokens),
    bfclPrefill(config) ? '--prefill-tool-call' : '--no-prefill-tool-call',
    '--threads', String(config.ray.num_cpus),
    '--label', opts.which,
  ];
  const overrides = Object.entries(b.limit_for).filter(([c]) => b.categories.includes(c));
  if (overrides.length) args.push('--limit-for', overrides.map(([c, n]) => `${c}=${n}`).join(','));
  const cmd = trainerCommand(opts.bfclPython, args);
  return { label: `BFCL ${opts.which}`, argv: cmd.argv, cwd: REPO_ROOT, env: { ...cmd.env, MPLBACKEND: 'Agg' }, passEnv: [] };
}

export interface BfclEvaluateInput {
  run: ResolvedRun;
  env: EnvInfo;
  which: 'baseline' | 'warm' | 'final';
  /** The base model dir (baseline) or the best checkpoint's step dir (final). */
  modelPath: string;
}

/** BFCL v3 scores of one model; null when the run has BFCL disabled or the backend cannot serve its checkpoints. */
export async function bfclEvaluate(input: BfclEvaluateInput): Promise<BfclResult | null> {
  const { run, env } = input;
  if (!run.config.bfcl.enabled) return null;
  if (!getBackend(run.config.backend).runsTrainerTools) {
    log('warn', 'BFCL needs a backend whose checkpoints grpo_trainer can export and serve (the built-in trainer); skipped', { backend: run.config.backend });
    return null;
  }
  const started = Date.now();
  const bfclEnv = await ensureBfclEnvironment(run.paths.stateDir, run.config.environment.python, { runId: run.runId });
  const outDir = join(run.paths.runDir, 'bfcl', input.which);
  await mkdir(outDir, { recursive: true });
  const outPath = join(outDir, 'bfcl.json');
  await rm(outPath, { force: true });
  const spec = bfclCommand(run.config, { bfclPython: bfclEnv.python, trainerPython: env.python, modelPath: input.modelPath, outDir, which: input.which });
  const logFile = join(run.paths.logDir, `bfcl-${input.which}.log`);
  const r = await runTracked(spec, logFile, { tickMs: 3000, onTick: () => ({ stage: 'bfcl', which: input.which, model: input.modelPath }) });
  if (r.cancelled) throw ApplicationFailure.create({ type: 'Cancelled', message: `BFCL ${input.which} cancelled`, nonRetryable: true });
  if (r.code !== 0 || !existsSync(outPath))
    throw ApplicationFailure.create({ type: 'BfclFailed', message: `BFCL ${input.which} exited with code ${r.code}; see ${logFile}\n${r.tail.slice(-1500)}` });
  const o = JSON.parse(await readFile(outPath, 'utf8')) as {
    package: string;
    version: string;
    data_version: string;
    overall: BfclCategoryResult;
    categories: Record<string, BfclCategoryResult>;
  };
  return {
    which: input.which,
    model: input.modelPath,
    outPath,
    package: o.package,
    version: o.version,
    dataVersion: o.data_version,
    overall: o.overall,
    categories: Object.fromEntries(Object.entries(o.categories).map(([c, v]) => [c, { accuracy: v.accuracy, correct: v.correct, total: v.total }])),
    seconds: Math.round((Date.now() - started) / 1000),
  };
}
