/**
 * `grpo verify`, `grpo report`, `grpo export`: commands that work on files (rollouts, run dirs,
 * checkpoints) with the trainer environment's python; they need no Temporal server.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, runPaths, stateDir } from '../common/state.js';
import { RUN_ID_PATTERN } from '../common/types.js';
import { reportPython, writeReportForDir } from '../activities/report.js';
import { CliError } from './client.js';

const say = (m: string) => process.stdout.write(m + '\n');

/** Python of the trainer environment ($GRPO_TRAINER_PYTHON, else <state>/envs/builtin/bin/python). */
export function trainerPython(state = stateDir()): string {
  const p = process.env.GRPO_TRAINER_PYTHON || join(state, 'envs', 'builtin', 'bin', 'python');
  if (!existsSync(p)) throw new CliError(`the trainer environment is missing (${p}); build it with: node scripts/grpo.js setup`, 2);
  return p;
}

/** Run `python -m grpo_trainer <args>` with inherited stdio; resolves with its exit code. */
export function runTrainer(python: string, args: string[]): Promise<number> {
  return new Promise((res) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: process.env.GRPO_TRAINER_DIR || join(REPO_ROOT, 'trainer'), PYTHONUNBUFFERED: '1', HF_HUB_OFFLINE: '1' };
    delete env.VIRTUAL_ENV;
    const child = spawn(python, ['-m', 'grpo_trainer', ...args], { stdio: 'inherit', env });
    child.once('error', () => res(127));
    child.once('exit', (code, signal) => res(code ?? (signal ? 128 : 1)));
  });
}

/** A run's directory in the state dir (the worker's GRPO_STATE_DIR must be the CLI's). */
export function runDirOf(runId: string | undefined, state = stateDir()): string {
  if (!runId) throw new CliError('missing <runId>', 2);
  if (!RUN_ID_PATTERN.test(runId)) throw new CliError(`<runId>: expected letters, digits, '.', '_' or '-', got ${JSON.stringify(runId)}`, 2);
  const dir = runPaths(state, runId).runDir;
  if (!existsSync(dir)) throw new CliError(`no run directory ${dir} (is GRPO_STATE_DIR the worker's?)`, 2);
  return dir;
}

/** grpo verify <rollouts.jsonl> --tasks <tasks.jsonl> [--out FILE] [--json] */
export async function cmdVerify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { tasks: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } } });
  const rollouts = positionals[0];
  if (!rollouts) throw new CliError('usage: grpo verify <rollouts.jsonl> --tasks <tasks.jsonl> [--out FILE] [--json]', 2);
  if (!values.tasks) throw new CliError('--tasks <tasks.jsonl> is required (NeMo Gym task JSONL with id and ground_truth)', 2);
  for (const f of [rollouts, values.tasks]) if (!existsSync(f)) throw new CliError(`file not found: ${f}`, 2);
  const py = ['verify', resolve(rollouts), '--tasks', resolve(values.tasks)];
  if (values.out) py.push('--out', resolve(values.out));
  if (values.json) py.push('--json');
  return runTrainer(trainerPython(), py);
}

/** grpo report <runId>: writes <run>/report/{report.md,report.html} and prints report.html's path. */
export async function cmdReport(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  const state = stateDir();
  const dir = runDirOf(positionals[0], state);
  const r = await writeReportForDir(dir, { python: reportPython(state), stateDir: state });
  if (values.json) say(JSON.stringify({ html: r.html, md: r.md, plots: r.plots, plotError: r.plotError, criteria: r.criteria }, null, 2));
  else {
    say(r.html);
    process.stderr.write(`report.md: ${r.md}${r.plotError ? `\nwarning: ${r.plotError}` : ''}\n`);
  }
  return 0;
}

/** The checkpoint to export: --step N, else the run's best (summary.json), else its newest. */
export function checkpointToExport(runDir: string, step?: number): string {
  const ckDir = join(runDir, 'checkpoints');
  if (step !== undefined) {
    const d = join(ckDir, `step_${step}`);
    if (!existsSync(d)) throw new CliError(`no checkpoint ${d}`, 2);
    return d;
  }
  const summary = join(runDir, 'summary.json');
  if (existsSync(summary)) {
    const best = (JSON.parse(readFileSync(summary, 'utf8')) as { best?: { dir?: string } | null }).best;
    if (best?.dir && existsSync(best.dir)) return best.dir;
  }
  const steps = existsSync(ckDir)
    ? readdirSync(ckDir)
        .map((n) => /^step_(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => !!m && existsSync(join(ckDir, m[0], 'training_info.json')))
        .map((m) => Number(m[1]))
    : [];
  if (!steps.length) throw new CliError(`run ${runDir} has no complete checkpoint to export`, 2);
  return join(ckDir, `step_${Math.max(...steps)}`);
}

/** grpo export <runId> [--out DIR] [--step N] [--prefill-tool-call] [--dtype D] */
export async function cmdExport(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, step: { type: 'string' }, 'prefill-tool-call': { type: 'boolean' }, dtype: { type: 'string' } },
  });
  const state = stateDir();
  const dir = runDirOf(positionals[0], state);
  if (values.step !== undefined && !/^\d+$/.test(values.step)) throw new CliError(`--step: expected a step number, got ${values.step}`, 2);
  const ckpt = checkpointToExport(dir, values.step === undefined ? undefined : Number(values.step));
  const out = resolve(values.out ?? join(dir, 'export', ckpt.split('/').at(-1)!));
  const py = ['export', '--model', ckpt, '--out', out, '--overwrite'];
  if (values['prefill-tool-call']) py.push('--prefill-tool-call');
  if (values.dtype) py.push('--dtype', values.dtype);
  process.stderr.write(`exporting ${ckpt} -> ${out}\n`);
  const code = await runTrainer(trainerPython(state), py);
  if (code === 0) process.stderr.write(`Hugging Face model dir: ${out}\nserve it: vllm serve ${out} --enable-auto-tool-choice --tool-call-parser hermes   (or: python -m grpo_trainer serve --model ${out})\n`);
  return code;
}
