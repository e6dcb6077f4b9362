/**
 * `grpo verify`, `grpo report` and `grpo export` end to end through the CLI (no Temporal server).
 * They run the trainer environment's python: $GRPO_TRAINER_PYTHON, else <state>/envs/builtin
 * (npm test builds it with `grpo setup`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, stateDir } from '../../src/common/state.js';
import { checkpointToExport } from '../../src/cli/tools.js';
import { writeRunFixture } from '../report-fixture.js';

const GRPO = join(REPO_ROOT, 'scripts', 'grpo.js');
const SHARED_EXAMPLE = '/work/shared/data/workplace_assistant/nemo_gym/example.jsonl';
const EXAMPLE = existsSync(SHARED_EXAMPLE) ? SHARED_EXAMPLE : join(REPO_ROOT, 'trainer/grpo_trainer/workplace/data/nemo_gym/example.jsonl');
const PYTHON = process.env.GRPO_TRAINER_PYTHON || join(stateDir(), 'envs', 'builtin', 'bin', 'python');

function grpo(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [GRPO, ...args], { encoding: 'utf8', env: { ...process.env, GRPO_TRAINER_PYTHON: PYTHON, ...env }, timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Task {
  id: number;
  category: string;
  ground_truth: { name: string; arguments: string }[];
}

/** A NeMo Gym rollout: the task's fields plus a Responses object whose output holds the calls. */
function rollout(task: Task, calls: { name: string; arguments: string }[]) {
  return {
    ...task,
    response: {
      id: `resp_${task.id}`,
      object: 'response',
      output: [
        ...calls.flatMap((c, i) => [
          { type: 'function_call', name: c.name, arguments: c.arguments, call_id: `call_${i}`, id: `fc_${i}`, status: 'completed' },
          { type: 'function_call_output', call_id: `call_${i}`, output: '{}' },
        ]),
        { type: 'message', role: 'assistant', id: 'msg', content: [{ type: 'output_text', text: 'Done.', annotations: [] }] },
      ],
    },
  };
}

/** The same final tool, with an argument that leads to another state. */
function wrongCall(c: { name: string; arguments: string }) {
  const a = JSON.parse(c.arguments) as Record<string, string>;
  if ('new_value' in a) a.new_value = 'not what was asked';
  else if ('body' in a) a.body = 'A different reply.';
  else {
    const k = Object.keys(a).find((x) => x.endsWith('_id'))!;
    a[k] = a[k] === '00000001' ? '00000002' : '00000001';
  }
  return { name: c.name, arguments: JSON.stringify(a) };
}

test('grpo verify: replayed ground truth scores 1 on every example task, a wrong final call 0', { timeout: 300_000 }, () => {
  assert.ok(existsSync(PYTHON), `trainer environment missing: ${PYTHON}`);
  const dir = mkdtempSync(join(tmpdir(), 'grpo-verify-'));
  try {
    const tasks = readFileSync(EXAMPLE, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Task);
    const good = join(dir, 'good.jsonl');
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(good, tasks.map((t) => JSON.stringify({ ...rollout(t, t.ground_truth), reward: 1.0 })).join('\n') + '\n');
    writeFileSync(bad, tasks.map((t) => JSON.stringify(rollout(t, [...t.ground_truth.slice(0, -1), wrongCall(t.ground_truth.at(-1)!)]))).join('\n') + '\n');
    const ok = grpo(['verify', good, '--tasks', EXAMPLE, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const r1 = JSON.parse(ok.stdout) as { rollouts: { reward: number; agrees: boolean }[]; summary: { mean_reward: number; num_disagreements: number } };
    assert.deepEqual(r1.rollouts.map((r) => r.reward), tasks.map(() => 1));
    assert.equal(r1.summary.num_disagreements, 0);
    const no = grpo(['verify', bad, '--tasks', EXAMPLE, '--json', '--out', join(dir, 'out.jsonl')]);
    assert.equal(no.code, 0, no.stderr);
    assert.deepEqual((JSON.parse(no.stdout) as typeof r1).rollouts.map((r) => r.reward), tasks.map(() => 0));
    assert.equal(readFileSync(join(dir, 'out.jsonl'), 'utf8').trim().split('\n').length, tasks.length);
    // A recorded reward that our environment does not reproduce: exit 1, named in the output.
    writeFileSync(bad, JSON.stringify({ ...rollout(tasks[0]!, []), reward: 1.0 }) + '\n');
    const disagree = grpo(['verify', bad, '--tasks', EXAMPLE]);
    assert.equal(disagree.code, 1);
    assert.match(disagree.stdout, /DISAGREES/);
    assert.equal(grpo(['verify', good]).code, 2); // --tasks is required
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('grpo report <id>: writes the report of a run in the state dir and prints its path', { timeout: 300_000 }, () => {
  const state = mkdtempSync(join(tmpdir(), 'grpo-state-'));
  try {
    const runDir = join(state, 'runs', 'fixture-run');
    writeRunFixture(runDir);
    const r = grpo(['report', 'fixture-run'], { GRPO_STATE_DIR: state, GRPO_REPORT_PYTHON: PYTHON });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(runDir, 'report', 'report.html'));
    assert.match(readFileSync(join(runDir, 'report', 'report.md'), 'utf8'), /## BFCL v3: baseline vs\. final/);
    assert.equal(grpo(['report', 'no-such-run'], { GRPO_STATE_DIR: state }).code, 2);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('grpo export <id>: the best checkpoint becomes a Hugging Face model dir that transformers loads', { timeout: 600_000 }, () => {
  assert.ok(existsSync(PYTHON), `trainer environment missing: ${PYTHON}`);
  const state = mkdtempSync(join(tmpdir(), 'grpo-state-'));
  try {
    const model = join(state, 'tiny');
    execFileSync(PYTHON, ['-m', 'grpo_trainer', 'prepare-model', '--tiny-random', '--out', model], { env: { ...process.env, PYTHONPATH: join(REPO_ROOT, 'trainer') }, stdio: 'ignore' });
    const runDir = join(state, 'runs', 'r1');
    for (const step of [2, 4]) {
      const d = join(runDir, 'checkpoints', `step_${step}`);
      mkdirSync(join(d, 'policy', 'weights'), { recursive: true });
      mkdirSync(join(d, 'policy', 'tokenizer'), { recursive: true });
      for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) cpSync(join(model, f), join(d, 'policy', 'weights', f));
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) if (existsSync(join(model, f))) cpSync(join(model, f), join(d, 'policy', 'tokenizer', f));
      writeFileSync(join(d, 'training_info.json'), JSON.stringify({ total_steps: step, 'val:accuracy': step === 2 ? 0.5 : 0.25 }));
    }
    writeFileSync(join(runDir, 'summary.json'), JSON.stringify({ best: { step: 2, dir: join(runDir, 'checkpoints', 'step_2'), metric: 0.5 } }));
    assert.equal(checkpointToExport(runDir), join(runDir, 'checkpoints', 'step_2'));
    assert.equal(checkpointToExport(runDir, 4), join(runDir, 'checkpoints', 'step_4'));
    const out = join(state, 'hf');
    const r = grpo(['export', 'r1', '--out', out], { GRPO_STATE_DIR: state });
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(readFileSync(join(out, 'grpo_export.json'), 'utf8'));
    assert.deepEqual(manifest.checkpoint, { total_steps: 2, 'val:accuracy': 0.5 });
    const check = execFileSync(
      PYTHON,
      [
        '-c',
        [
          'import sys, torch',
          'from transformers import AutoModelForCausalLM, AutoTokenizer',
          'tok = AutoTokenizer.from_pretrained(sys.argv[1]); model = AutoModelForCausalLM.from_pretrained(sys.argv[1])',
          'tools = [{"type": "function", "function": {"name": "email_delete_email", "description": "Deletes an email.", "parameters": {"type": "object", "properties": {"email_id": {"type": "string"}}, "required": ["email_id"]}}}]',
          'text = tok.apply_chat_template([{"role": "user", "content": "Delete email 7"}], tools=tools, tokenize=False, add_generation_prompt=True)',
          'assert "- email_delete_email(email_id: string): Deletes an email." in text and "<tool_call>" in text, text',
          'ids = tok(text, return_tensors="pt"); out = model.generate(**ids, max_new_tokens=3, do_sample=False)',
          'print(out.shape[1] - ids["input_ids"].shape[1])',
        ].join('\n'),
        out,
      ],
      { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } },
    );
    assert.ok(Number(check.trim().split('\n').at(-1)) >= 1);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});
