/**
 * `grpo verify`, `grpo report`, `grpo export`: commands that work on files (rollouts, run dirs,
 * checkpoints) with the trainer environment's python; they need no Temporal server.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runPaths, stateDir } from '../common/state.js';
import { trainerCommand } from '../common/trainer-command.js';
import { RUN_ID_PATTERN } from '../common/types.js';
import { reportPython, writeReportForDir } from '../report/write.js';
import { listCheckpoints } from '../checkpoints/reader.js';
import { CliError } from './client.js';
import { flag, JSON_OPTION, required, str, type Command } from './command.js';
import { say } from './output.js';

/** Python of the trainer environment ($GRPO_TRAINER_PYTHON, else <state>/envs/builtin/bin/python). */
export function trainerPython(state = stateDir()): string {
  const p = process.env.GRPO_TRAINER_PYTHON || join(state, 'envs', 'builtin', 'bin', 'python');
  if (!existsSync(p)) throw new CliError(`the trainer environment is missing (${p}); build it with: node scripts/grpo.js setup`, 2);
  return p;
}

/** Run `python -m grpo_trainer <args>` with inherited stdio; resolves with its exit code. */
export function runTrainer(python: string, args: string[], o: { stdoutToStderr?: boolean } = {}): Promise<number> {
  return new Promise((res) => {
    const cmd = trainerCommand(python, args);
    const env: NodeJS.ProcessEnv = { ...process.env, ...cmd.env };
    delete env.VIRTUAL_ENV;
    // stdoutToStderr: keeps our stdout for a --json result.
    const child = spawn(cmd.argv[0]!, cmd.argv.slice(1), { stdio: ['inherit', o.stdoutToStderr ? 2 : 'inherit', 'inherit'], env });
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

export const verify: Command = {
  name: 'verify',
  brief: 'recompute the workplace reward of NeMo Gym rollouts',
  args: '<rollouts.jsonl> --tasks <tasks.jsonl> [--out FILE] [--json]',
  summary: 'Recompute the workplace reward of NeMo Gym rollouts against the tasks\' ground truth; exit 1 if a recorded reward disagrees.',
  options: {
    tasks: { type: 'string', value: 'FILE', help: 'NeMo Gym task JSONL with id and ground_truth (required)' },
    out: { type: 'string', value: 'FILE', help: 'write the per-rollout verdicts here' },
    json: JSON_OPTION,
  },
  async run(p) {
    const rollouts = required(this, p, 0, '<rollouts.jsonl>');
    const tasks = str(p, 'tasks');
    if (!tasks) throw new CliError('--tasks <tasks.jsonl> is required (NeMo Gym task JSONL with id and ground_truth)', 2);
    for (const f of [rollouts, tasks]) if (!existsSync(f)) throw new CliError(`file not found: ${f}`, 2);
    const py = ['verify', resolve(rollouts), '--tasks', resolve(tasks)];
    if (str(p, 'out')) py.push('--out', resolve(str(p, 'out')!));
    if (flag(p, 'json')) py.push('--json');
    return runTrainer(trainerPython(), py);
  },
};

export const report: Command = {
  name: 'report',
  brief: 'write the run\'s report (report.md, report.html) and print its path',
  args: '<id> [--json]',
  summary: "(Re)write the run's report (report.md and a self-contained report.html with plots) and print its path.",
  options: { json: JSON_OPTION },
  async run(p) {
    const state = stateDir();
    const dir = runDirOf(required(this, p, 0, '<id>'), state);
    const r = await writeReportForDir(dir, { python: reportPython(state), stateDir: state });
    if (flag(p, 'json')) say(JSON.stringify({ html: r.html, md: r.md, plots: r.plots, plotError: r.plotError, criteria: r.criteria }, null, 2));
    else {
      say(r.html);
      process.stderr.write(`report.md: ${r.md}${r.plotError ? `\nwarning: ${r.plotError}` : ''}\n`);
    }
    return 0;
  },
};

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
  const newest = listCheckpoints(ckDir, 'val:accuracy').complete.at(-1);
  if (!newest) throw new CliError(`run ${runDir} has no complete checkpoint to export`, 2);
  return newest.dir;
}

export const exportCmd: Command = {
  name: 'export',
  brief: 'a checkpoint as a Hugging Face model dir (vLLM-ready)',
  args: '<id> [--out DIR] [--step N] [--prefill-tool-call] [--dtype D] [--json]',
  summary: 'The best (or step N) checkpoint as a Hugging Face model dir, ready for `vllm serve`.',
  options: {
    out: { type: 'string', value: 'DIR', help: 'where to write it (default <run>/export/step_N)' },
    step: { type: 'string', value: 'N', help: 'export step_N instead of the best checkpoint' },
    'prefill-tool-call': { type: 'boolean', help: "bake the trainer's tool-call opener into the chat template" },
    dtype: { type: 'string', value: 'D', help: 'float32 | bfloat16 | float16' },
    json: { ...JSON_OPTION, help: 'print {runId, checkpoint, out} as JSON (the exporter\'s own output goes to stderr)' },
  },
  async run(p) {
    const state = stateDir();
    const id = required(this, p, 0, '<id>');
    const dir = runDirOf(id, state);
    const step = str(p, 'step');
    if (step !== undefined && !/^\d+$/.test(step)) throw new CliError(`--step: expected a step number, got ${step}`, 2);
    const ckpt = checkpointToExport(dir, step === undefined ? undefined : Number(step));
    const out = resolve(str(p, 'out') ?? join(dir, 'export', ckpt.split('/').at(-1)!));
    const py = ['export', '--model', ckpt, '--out', out, '--overwrite'];
    if (flag(p, 'prefill-tool-call')) py.push('--prefill-tool-call');
    if (str(p, 'dtype')) py.push('--dtype', str(p, 'dtype')!);
    process.stderr.write(`exporting ${ckpt} -> ${out}\n`);
    const json = flag(p, 'json');
    const code = await runTrainer(trainerPython(state), py, { stdoutToStderr: json });
    if (code === 0 && json) say(JSON.stringify({ runId: id, checkpoint: ckpt, out }, null, 2));
    if (code === 0) process.stderr.write(`Hugging Face model dir: ${out}\nserve it: vllm serve ${out} --enable-auto-tool-choice --tool-call-parser hermes   (or: python -m grpo_trainer serve --model ${out})\n`);
    return code;
  },
};
