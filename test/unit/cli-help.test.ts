/**
 * The CLI as a new user meets it: `--help` on every verb and sub-verb of the real binary exits 0,
 * prints its usage and does nothing else (no connection: the server address is a closed port; no
 * file: the state dir stays empty); `--version`; "did you mean"; `--json` on every verb that prints
 * a result.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/main.js';
import { cli, ROOT } from '../helpers.js';

let state: string;
let env: NodeJS.ProcessEnv;

before(() => {
  state = mkdtempSync(join(tmpdir(), 'grpo-help-'));
  // Anything that tried to connect would fail (port 1), anything that wrote would show in the state dir.
  env = { TEMPORAL_ADDRESS: '127.0.0.1:1', GRPO_STATE_DIR: state, TEMPORAL_PROFILE: '', TEMPORAL_CONFIG_FILE: '' };
});
after(() => rmSync(state, { recursive: true, force: true }));

const stateIsEmpty = () => assert.deepEqual(readdirSync(state), [], 'the state dir stays empty');

test('--help on every verb and sub-verb: exit 0, its usage, no side effect', { timeout: 300_000 }, async () => {
  assert.ok(COMMANDS.length >= 20, `${COMMANDS.length} verbs`);
  const forms = [
    ...COMMANDS.map((c) => ({ c, args: [...c.name.split(' '), '--help'] })),
    // the other spellings, on a verb and a sub-verb
    ...COMMANDS.filter((c) => ['run', 'schedule create'].includes(c.name)).flatMap((c) => [
      { c, args: [...c.name.split(' '), '-h'] },
      { c, args: ['help', ...c.name.split(' ')] },
    ]),
  ];
  // A few at a time: each is a fresh node process.
  for (let i = 0; i < forms.length; i += 8) {
    const batch = forms.slice(i, i + 8);
    const results = await Promise.all(batch.map((f) => cli(f.args, { env })));
    results.forEach((r, j) => {
      const { c, args } = batch[j]!;
      const what = `grpo ${args.join(' ')}`;
      assert.equal(r.code, 0, `${what} → exit ${r.code}\n${r.out}`);
      assert.match(r.stdout, new RegExp(`^Usage: grpo ${c.name}\\b`), what);
      assert.match(r.stdout, /\n {2}-h, --help {2,}show this help and exit/, what);
      assert.equal(r.stderr, '', `${what} wrote to stderr: ${r.stderr}`);
    });
  }
  stateIsEmpty();
});

test('groups of sub-verbs (schedule, config) answer --help with their verbs; the top level with every verb', async () => {
  const groups = [...new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]!))];
  assert.ok(groups.includes('schedule') && groups.includes('config'), groups.join());
  for (const g of groups.filter((g) => !COMMANDS.some((c) => c.name === g))) {
    const r = await cli([g, '--help'], { env });
    assert.equal(r.code, 0, r.out);
    for (const c of COMMANDS.filter((c) => c.name.startsWith(`${g} `))) assert.ok(r.stdout.includes(`grpo ${c.name}`), `${g} --help names ${c.name}`);
  }
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await cli(args, { env });
    assert.equal(r.code, 0, r.out);
    for (const c of COMMANDS) assert.ok(r.stdout.includes(`  ${c.name} `), `top-level help names ${c.name}`);
    assert.match(r.stdout, /TEMPORAL_PROFILE/);
    assert.match(r.stdout, /TEMPORAL_TLS_CLIENT_CERT_PATH/);
    assert.doesNotMatch(r.stdout, /TEMPORAL_TLS_CERT\b/);
  }
  stateIsEmpty();
});

test('--version prints the package version; a misspelt verb gets "did you mean"', async () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const args of [['--version'], ['-V']]) {
    const r = await cli(args, { env });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), version);
  }
  for (const [typo, verb] of [['stauts', 'status'], ['lsit', 'list'], ['schedul', 'schedule'], ['quickstrat', 'quickstart']]) {
    const r = await cli([typo!], { env });
    assert.equal(r.code, 2, r.out);
    assert.match(r.stderr, new RegExp(`Did you mean: grpo ${verb}\\?`), r.stderr);
  }
  stateIsEmpty();
});

test('every verb that prints a result has --json', () => {
  // server, worker and quickstart run until stopped; setup always prints JSON.
  const long = new Set(['server', 'worker', 'quickstart', 'setup']);
  const missing = COMMANDS.filter((c) => !long.has(c.name) && !c.options.json).map((c) => c.name);
  assert.deepEqual(missing, []);
});

test("the quickstart's start line gives the measured duration for the default config only", async () => {
  const { startedLine } = await import('../../src/cli/commands/quickstart.js');
  const cpu = startedLine('r1', 'configs/builtin-cpu.yaml', true, 12);
  assert.match(cpu, /^Started run r1: .*baseline eval, warm start and its eval, 12 GRPO steps, final eval, summary \(the shipped config: 1¼ to 2½ hours on 2 CPU cores\)\.$/);
  assert.equal(startedLine('r1', join(ROOT, 'configs', 'builtin-cpu.yaml'), true, 12), cpu, 'an absolute path to the default config is the default config');
  const gpu = startedLine('r2', 'configs/builtin-gpu.yaml', true, 30);
  assert.match(gpu, /30 GRPO steps, final eval, summary\.$/);
  assert.doesNotMatch(gpu, /CPU cores/);
});
