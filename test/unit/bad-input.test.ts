/**
 * Bad input as a new user would hit it: each case gives a clear message, a non-zero exit, and
 * starts no work (no run directory, no workflow; `run` fails before contacting any server).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { cli, ROOT, STATE } from '../helpers.js';

let dir: string;
let state: string;
const base = readFileSync(join(ROOT, 'configs', 'builtin-cpu.yaml'), 'utf8');
// A port nothing listens on: bad configs must fail before any server contact.
const NOWHERE = { TEMPORAL_ADDRESS: '127.0.0.1:1' };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'grpo-bad-'));
  state = join(dir, 'state');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function expectRejected(args: string[], patterns: RegExp[], code = 2) {
  for (const cmd of [['config', 'check'], ['run'], ['plan']]) {
    const r = await cli([...cmd, ...args], { env: { ...NOWHERE, GRPO_STATE_DIR: state } });
    assert.equal(r.code, code, `${cmd.join(' ')} ${args.join(' ')} → exit ${r.code}\n${r.out}`);
    for (const p of patterns) assert.match(r.out, p, `${cmd.join(' ')}: ${r.out}`);
    assert.doesNotMatch(r.out, /Cannot reach the Temporal server/, 'config errors come before any server contact');
    assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
  }
  assert.ok(!existsSync(join(state, 'runs')) || readdirSync(join(state, 'runs')).length === 0, 'no run directory was created');
}

test('missing config file names the path and the shipped configs', async () => {
  await expectRejected([join(dir, 'nope.yaml')], [/nope\.yaml: no such file/, /configs\/builtin-cpu\.yaml/]);
});

test('broken YAML gives line and column', async () => {
  const p = write('broken.yaml', 'backend: builtin\ntrainer:\n  grpo: {max_num_steps: 12\n  val_period: 6\n');
  await expectRejected([p], [/broken YAML at line \d+, column \d+/]);
});

test('wrong types name the field, what was expected and what was given', async () => {
  const p = write('types.yaml', base.replace('max_num_steps: 12', 'max_num_steps: "twelve"'));
  await expectRejected([p], [/trainer\.grpo\.max_num_steps: expected number, got the string "twelve"/]);
  const p2 = write('types2.yaml', base.replace('enabled: true\n  num_cpus', 'enabled: "yes"\n  num_cpus'));
  await expectRejected([p2], [/ray\.enabled: expected boolean, got the string "yes"/]);
});

test('unknown keys are rejected with their full path', async () => {
  const p = write('unknown.yaml', base.replace('run:\n', 'run:\n  segment_stepz: 3\n'));
  await expectRejected([p], [/run\.segment_stepz: unknown key/]);
  const p2 = write('unknown2.yaml', base + 'trainr:\n  x: 1\n');
  await expectRejected([p2], [/trainr: unknown key/]);
});

test('a token in the config is refused and pointed at the worker environment', async () => {
  const p = write('token.yaml', base.replace('  policy:\n', '  policy:\n    HF_TOKEN: hf_abcdefghijklmnopqrstuvwxyz123456\n'));
  await expectRejected([p], [/trainer\.policy\.HF_TOKEN: looks like a secret/, /environment of the worker/]);
  const r = await cli(['config', 'check', p]);
  assert.doesNotMatch(r.out, /hf_abcdefghijklmnopqrstuvwxyz123456/, 'the secret itself is never echoed');
  const p2 = write('token2.yaml', base.replace('description: ', 'description: WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567 '));
  await expectRejected([p2], [/description: looks like a secret/]);
  // --set cannot smuggle one in either
  await expectRejected([join(ROOT, 'configs', 'builtin-cpu.yaml'), '--set', 'trainer.logger.wandb_api_key=abc123'], [/trainer\.logger\.wandb_api_key: looks like a secret/]);
});

test('zero or negative periods are rejected', async () => {
  const cfg = join(ROOT, 'configs', 'builtin-cpu.yaml');
  await expectRejected([cfg, '--set', 'trainer.grpo.val_period=0'], [/trainer\.grpo\.val_period: expected a number at least 1, got the integer 0/]);
  await expectRejected([cfg, '--set', 'trainer.checkpointing.save_period=-6'], [/trainer\.checkpointing\.save_period: expected a number at least 1, got the integer -6/]);
  await expectRejected([cfg, '--set', 'run.segment_steps=0'], [/run\.segment_steps: expected a number at least 1/]);
});

test('keep_top_k < 1 is rejected', async () => {
  await expectRejected([join(ROOT, 'configs', 'builtin-cpu.yaml'), '--set', 'trainer.checkpointing.keep_top_k=0'], [/trainer\.checkpointing\.keep_top_k: expected a number at least 1, got the integer 0/]);
});

test('save_period that never coincides with val_period warns that top-k degrades to newest', async () => {
  const r = await cli(['config', 'check', join(ROOT, 'configs', 'builtin-cpu.yaml'), '--set', 'trainer.checkpointing.save_period=5', '--set', 'trainer.grpo.val_period=7', '--set', 'trainer.grpo.val_at_end=false']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stderr, /Warning \(trainer\): .*checkpointing\.save_period=5.*grpo\.val_period=7/);
  assert.match(r.stderr, /no checkpoint|none of the checkpoints/i);
  assert.match(r.stderr, /newest/);
});

test("grpo config check and the trainer's check-config give the same warning (save 6, val 4, 12 steps)", async () => {
  const sets = ['trainer.checkpointing.save_period=6', 'trainer.grpo.val_period=4', 'trainer.grpo.max_num_steps=12'];
  const r = await cli(['config', 'check', join(ROOT, 'configs', 'builtin-cpu.yaml'), ...sets.flatMap((s) => ['--set', s])]);
  assert.equal(r.code, 0, r.out);
  const fromCli = [...r.stderr.matchAll(/^Warning \(trainer\): (.*)$/gm)].map((m) => m[1]);
  assert.equal(fromCli.length, 1, r.stderr);
  assert.match(fromCli[0]!, /step 6/);
  // The trainer alone, on the same section (the pipeline config's trainer: key).
  const direct = spawnSync(join(STATE, 'envs', 'builtin', 'bin', 'python'), ['-m', 'grpo_trainer', 'check-config', '--skip-paths', '--config', join(ROOT, 'configs', 'builtin-cpu.yaml'), ...sets.map((s) => s.replace(/^trainer\./, ''))], {
    env: { ...process.env, PYTHONPATH: join(ROOT, 'trainer') },
    encoding: 'utf8',
  });
  assert.equal(direct.status, 0, direct.stdout + direct.stderr);
  const fromTrainer = [...(direct.stdout + direct.stderr).matchAll(/^warning: (.*)$/gim)].map((m) => m[1]);
  assert.deepEqual(fromTrainer, fromCli);
  // No pipeline-side copy of the rule: the pipeline's own warnings say nothing about it.
  assert.doesNotMatch(r.stderr, /^Warning: .*save_period/m);
});

test('a malformed --set is explained', async () => {
  const r = await cli(['config', 'check', join(ROOT, 'configs', 'builtin-cpu.yaml'), '--set', 'trainer.grpo.max_num_steps']);
  assert.equal(r.code, 2);
  assert.match(r.out, /expected key=value/);
});

test('an unreachable Temporal server says how to start one', async () => {
  for (const args of [['status', 'some-run'], ['list'], ['run', join(ROOT, 'configs', 'builtin-cpu.yaml'), '--set', 'model.source=tiny-random']]) {
    const r = await cli(args, { env: { ...NOWHERE, GRPO_STATE_DIR: state } });
    assert.equal(r.code, 3, r.out);
    assert.match(r.stderr, /Cannot reach the Temporal server at 127\.0\.0\.1:1/);
    assert.match(r.stderr, /npm run grpo -- server/);
    assert.match(r.stderr, /TEMPORAL_ADDRESS/);
  }
  assert.ok(!existsSync(join(state, 'runs')), 'no work started');
});

test('a busy port gives a clear message', async () => {
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const r = await cli(['server', '--headless', '--in-memory', '--port', String(port)], { env: { GRPO_STATE_DIR: state } });
    assert.equal(r.code, 3, r.out);
    assert.match(r.stderr, new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is busy: another program is listening there`));
    assert.match(r.stderr, /--port <free port>/);
  } finally {
    srv.close();
  }
});

test('unknown commands and options print usage', async () => {
  const r = await cli(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /Usage: grpo/);
});
