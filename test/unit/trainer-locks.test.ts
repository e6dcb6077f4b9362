/**
 * The trainer's locks against plain PyPI, with this machine's pip configuration switched off
 * (PIP_CONFIG_FILE=/dev/null, no PIP_* / UV_* variables, uv without its config files, index
 * https://pypi.org/simple). Metadata only: uv resolves, nothing is downloaded but index pages and
 * wheel metadata (cached in uv's cache). Needs PyPI and <state>/tools/venv/bin/uv (scripts/dev-tools.sh).
 *
 * - the locks are what `npm run lock` produces now (the same pins, the hashes PyPI lists for them);
 * - the environment build (requirements.lock, then torch with requirements-torch.txt as constraints)
 *   resolves on Linux x86_64 for CPython 3.11 and 3.12 from wheels: torch is PyPI's CUDA build with
 *   the libraries it needs, and nothing outside the two files is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, runPaths, stateDir } from '../../src/common/state.js';
import { loadConfigFile } from '../../src/config/load.js';
import { getBackend } from '../../src/backends/index.js';
import { envFingerprint } from '../../src/environment/build.js';

const TRAINER = join(REPO_ROOT, 'trainer');
const UV = join(stateDir(), 'tools', 'venv', 'bin', 'uv');

/** The environment without the machine's pip and uv settings (uv's cache location stays). */
function plainEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PIP|UV)_/.test(k) || k === 'UV_CACHE_DIR'));
  return { ...env, PIP_CONFIG_FILE: '/dev/null', UV_NO_CONFIG: '1' };
}

/** The requirement lines of a uv-generated file (name==version ; marker), without hashes and comments. */
function requirementLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /^[a-z0-9]/.test(l))
    .map((l) => l.replace(/\s*\\$/, ''));
}
const pin = (line: string) => line.split(/\s*;/)[0]!.trim();

test('builtin environment: the hashed lock without resolving, then torch with its pins; torch_index_url picks the index and rebuilds', async () => {
  const env = (sets: string[]) => {
    const config = loadConfigFile(join(REPO_ROOT, 'configs', 'builtin-cpu.yaml'), sets).config;
    return getBackend('builtin').environment({ config, repoRoot: REPO_ROOT, stateDir: '/s', paths: runPaths('/s', 'locks-unit') });
  };
  const plain = env([]);
  const [lock, torchPins] = [join(TRAINER, 'requirements.lock'), join(TRAINER, 'requirements-torch.txt')];
  assert.deepEqual(plain.lockFiles, [lock, torchPins]);
  assert.deepEqual(plain.build.map((s) => s.argv.slice(1)), [
    ['-m', 'venv', '/s/envs/builtin'],
    ['install', '--disable-pip-version-check', '--require-hashes', '--no-deps', '-r', lock],
    ['install', '--disable-pip-version-check', '-c', torchPins, 'torch'],
  ]);
  const cpu = env(['environment.torch_index_url=https://download.pytorch.org/whl/cpu']);
  assert.deepEqual(cpu.build[2]!.argv.slice(1), ['install', '--disable-pip-version-check', '--index-url', 'https://download.pytorch.org/whl/cpu', '-c', torchPins, 'torch']);
  assert.notEqual(await envFingerprint(cpu.lockFiles, cpu.fingerprintExtra), await envFingerprint(plain.lockFiles, plain.fingerprintExtra));
  assert.throws(() => env(['environment.torch_index_url=download.pytorch.org']), /torch_index_url/);
});

test('trainer locks: up to date with their inputs (npm run lock -- --check)', () => {
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'lock.sh'), '--check'], { cwd: REPO_ROOT, env: plainEnv(), encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`.slice(-4000));
});

for (const python of ['3.11', '3.12']) {
  test(`trainer environment: resolves on plain PyPI for Linux x86_64, CPython ${python}; torch comes with its CUDA libraries`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'grpo-locks-'));
    try {
      const lock = requirementLines(join(TRAINER, 'requirements.lock'));
      const torchPins = requirementLines(join(TRAINER, 'requirements-torch.txt'));
      // What the two install steps put into an empty venv, as one resolution (with dependencies, so a
      // package the lock lacks would show up here).
      writeFileSync(join(dir, 'lock.txt'), lock.join('\n') + '\n');
      const args = ['pip', 'install', '--dry-run', '--no-config', '--index-url', 'https://pypi.org/simple', '--python-platform', 'x86_64-manylinux_2_28', '--python-version', python, '--only-binary', ':all:', '--target', join(dir, 'target')];
      args.push('-r', join(dir, 'lock.txt'), '-c', join(TRAINER, 'requirements-torch.txt'), '--override', join(TRAINER, 'lock-overrides.txt'), 'torch');
      const r = spawnSync(UV, args, { cwd: dir, env: plainEnv(), encoding: 'utf8', timeout: 300_000 });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`.slice(-4000));
      const installed = [...`${r.stdout}\n${r.stderr}`.matchAll(/^ \+ (\S+==\S+)$/gm)].map((m) => m[1]!);
      const versions = new Map(installed.map((p) => p.split('==') as [string, string]));
      assert.equal(versions.get('torch'), torchPins.map(pin).find((p) => p.startsWith('torch=='))!.split('==')[1], 'torch at its pin, without a local label (+cpu): the PyPI build');
      for (const lib of ['nvidia-cublas', 'nvidia-cudnn-cu13', 'nvidia-nccl-cu13', 'cuda-toolkit', 'triton']) assert.ok(versions.has(lib), `torch needs ${lib}`);
      const pinned = new Set([...lock, ...torchPins].map(pin));
      assert.deepEqual(installed.filter((p) => !pinned.has(p)), [], 'every installed package is pinned in requirements.lock or requirements-torch.txt');
      const unconditional = lock.filter((l) => !l.includes(';')).map(pin);
      assert.deepEqual(unconditional.filter((p) => !installed.includes(p)), [], 'every unconditional pin of the lock is installed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
