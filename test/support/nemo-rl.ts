/**
 * A NeMo RL checkout for tests, made from the TEST DOUBLE (test/doubles/nemo-rl-TEST-DOUBLE): copied
 * into a temp dir as a git repository, in today's layout or the seed's penguin names, with NeMo Gym
 * task files of a chosen size; and a Hub TEST DOUBLE serving a Nemotron-like tokenizer.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, STATE } from '../helpers.js';

export const NEMO_RL_DOUBLE = join(ROOT, 'test', 'doubles', 'nemo-rl-TEST-DOUBLE');
export const TOOLS_BIN = join(STATE, 'tools', 'venv', 'bin');

/** One NeMo Gym workplace task row (the fields the pipeline and the double read). */
function task(i: number): string {
  const categories = ['workplace_assistant_email', 'workplace_assistant_calendar', 'workplace_assistant_analytics'];
  return JSON.stringify({
    id: i,
    category: categories[i % categories.length],
    environment_name: 'workplace_assistant',
    responses_create_params: { input: [{ role: 'user', content: `task ${i}` }], tools: [], parallel_tool_calls: false },
    ground_truth: [],
  });
}

export interface Checkout {
  dir: string;
  remove(): void;
}

/** A checkout with `train` / `validation` rows in the recipe's data paths. */
export function makeCheckout(opts: { layout?: 'nemo_gym' | 'penguin'; train?: number; validation?: number } = {}): Checkout {
  const base = mkdtempSync(join(tmpdir(), 'grpo-nrl-'));
  const dir = join(base, 'RL');
  cpSync(NEMO_RL_DOUBLE, dir, { recursive: true, filter: (src) => !src.includes('/.venv') });
  if (opts.layout === 'penguin') {
    mkdirSync(join(dir, 'examples', 'penguin'), { recursive: true });
    renameSync(join(dir, 'examples', 'nemo_gym', 'run_grpo_nemo_gym.py'), join(dir, 'examples', 'penguin', 'run_grpo_penguin.py'));
    renameSync(join(dir, 'examples', 'nemo_gym', 'grpo_workplace_assistant_nemotron_nano_v2_9b.yaml'), join(dir, 'examples', 'penguin', 'grpo_workplace_assistant_nemotron_nano_v2_9b.yaml'));
  }
  const data = join(dir, '3rdparty', 'Gym-workspace', 'Gym', 'data', 'workplace_assistant');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'train.jsonl'), Array.from({ length: opts.train ?? 12 }, (_, i) => task(i)).join('\n') + '\n');
  writeFileSync(join(data, 'validation.jsonl'), Array.from({ length: opts.validation ?? 6 }, (_, i) => task(1000 + i)).join('\n') + '\n');
  const git = (...a: string[]) => execFileSync('git', ['-C', dir, ...a], { stdio: 'ignore' });
  git('init', '-q');
  git('-c', 'user.email=t@example.invalid', '-c', 'user.name=test', 'add', '-A');
  git('-c', 'user.email=t@example.invalid', '-c', 'user.name=test', 'commit', '-q', '-m', 'test double checkout');
  return { dir, remove: () => rmSync(base, { recursive: true, force: true }) };
}

/** PATH with the tools venv first: `uv` for the NeMo RL stages comes from there (npm test installs it). */
export function pathWithUv(): string {
  if (!existsSync(join(TOOLS_BIN, 'uv'))) throw new Error(`uv is missing in ${TOOLS_BIN} (scripts/test.sh installs it)`);
  return `${TOOLS_BIN}:${process.env.PATH ?? ''}`;
}

/** A Hub TEST DOUBLE serving a small Nemotron-like model (the chat template the tutorial edits). */
export async function startHub(): Promise<{ endpoint: string; log: string; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-hub-'));
  const model = join(dir, 'model');
  mkdirSync(model);
  writeFileSync(join(model, 'config.json'), JSON.stringify({ model_type: 'nemotron_h', architectures: ['NemotronHForCausalLM'] }));
  const template = "{%- set enable_thinking = true -%}{%- for m in messages -%}{{ m['content'] }}{%- endfor -%}{%- if messages[-1]['role'] == 'assistant' -%}{%- set x = 1 -%}{%- if x -%}strip{%- endif -%}{%- endif -%}";
  writeFileSync(join(model, 'tokenizer_config.json'), JSON.stringify({ chat_template: template, model_max_length: 8192 }));
  writeFileSync(join(model, 'tokenizer.json'), '{}');
  const portFile = join(dir, 'port');
  const log = join(dir, 'hub.log');
  const child: ChildProcess = spawn(join(STATE, 'envs', 'builtin', 'bin', 'python'), [join(ROOT, 'test', 'doubles', 'hub-server-TEST-DOUBLE.py'), '--model-dir', model, '--port', '0', '--port-file', portFile, '--log', log], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 100));
  const port = readFileSync(portFile, 'utf8').trim();
  return { endpoint: `http://127.0.0.1:${port}`, log, stop: () => (child.kill(), rmSync(dir, { recursive: true, force: true })) };
}

export { dirname };
