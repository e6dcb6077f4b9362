/**
 * A NeMo RL checkout as the pipeline reads it: which layout it has (today's examples/nemo_gym, or
 * the seed tutorial's examples/penguin names), the recipe YAML (with NeMo RL's `defaults:`
 * inheritance), and how an override must be spelled for it: NeMo RL applies Hydra overrides in
 * struct mode, so `key=value` works only for a key the YAML already has and a new key needs `++`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export type Layout = 'nemo_gym' | 'penguin';

/** The run script and recipe of each layout, relative to the checkout. */
export const LAYOUTS: Record<Layout, { script: string; config: string }> = {
  // NeMo RL v0.5.0 and later (examples/nemo_gym since the penguin -> nemo_gym rename).
  nemo_gym: { script: 'examples/nemo_gym/run_grpo_nemo_gym.py', config: 'examples/nemo_gym/grpo_workplace_assistant_nemotron_nano_v2_9b.yaml' },
  // The names the seed tutorial uses (a pre-release checkout).
  penguin: { script: 'examples/penguin/run_grpo_penguin.py', config: 'examples/penguin/grpo_workplace_assistant_nemotron_nano_v2_9b.yaml' },
};

export interface ResolvedLayout {
  layout: Layout | 'custom';
  script: string;
  configPath: string;
  /** Why the checkout cannot be launched (files missing), naming what was looked for. */
  problem: string | null;
}

/**
 * The layout of the checkout at `repoDir`: explicit `script`/`config_path` win; otherwise the first
 * layout whose two files exist. Without a checkout (planning on a laptop) it answers nemo_gym.
 */
export function resolveLayout(repoDir: string, explicit: { script?: string | null; config_path?: string | null }): ResolvedLayout {
  const has = (p: string) => existsSync(isAbsolute(p) ? p : join(repoDir, p));
  if (explicit.script || explicit.config_path) {
    const script = explicit.script ?? LAYOUTS.nemo_gym.script;
    const configPath = explicit.config_path ?? LAYOUTS.nemo_gym.config;
    const missing = [script, configPath].filter((p) => existsSync(repoDir) && !has(p));
    return { layout: 'custom', script, configPath, problem: missing.length ? `nemo_rl.script / nemo_rl.config_path: ${missing.join(' and ')} not found in ${repoDir}` : null };
  }
  for (const layout of ['nemo_gym', 'penguin'] as const)
    if (has(LAYOUTS[layout].script) && has(LAYOUTS[layout].config)) return { layout, script: LAYOUTS[layout].script, configPath: LAYOUTS[layout].config, problem: null };
  const problem = existsSync(repoDir)
    ? `${repoDir} has neither NeMo RL layout: looked for ${LAYOUTS.nemo_gym.script} + ${LAYOUTS.nemo_gym.config} (NeMo RL v0.5.0 and later) and ${LAYOUTS.penguin.script} + ${LAYOUTS.penguin.config} (the seed tutorial's names); set nemo_rl.script and nemo_rl.config_path for another layout`
    : `NeMo RL checkout not found at ${repoDir}: set nemo_rl.repo_dir to a NeMo RL checkout (git clone --recursive https://github.com/NVIDIA-NeMo/RL)`;
  return { layout: 'nemo_gym', script: LAYOUTS.nemo_gym.script, configPath: LAYOUTS.nemo_gym.config, problem };
}

type Tree = Record<string, unknown>;

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    const replace = v && typeof v === 'object' && !Array.isArray(v) && (v as Tree)._override_ === true;
    if (replace) {
      const { _override_: _, ...rest } = v as Tree;
      out[k] = rest;
    } else if (b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v)) out[k] = merge(b as Tree, v as Tree);
    else out[k] = v;
  }
  return out;
}

/** The recipe YAML with its `defaults:` parents merged in (the child wins; `_override_: true` replaces a section). */
export function readRecipe(path: string, seen: string[] = []): Tree {
  if (seen.includes(path)) throw new Error(`${path}: defaults form a cycle (${[...seen, path].join(' -> ')})`);
  const own = (parseYaml(readFileSync(path, 'utf8')) ?? {}) as Tree;
  const defaults = own.defaults;
  delete own.defaults;
  const parents = defaults === undefined ? [] : Array.isArray(defaults) ? defaults : [defaults];
  let base: Tree = {};
  for (const p of parents) base = merge(base, readRecipe(resolve(dirname(path), String(p)), [...seen, path]));
  return merge(base, own);
}

export function getKey(tree: Tree, dotted: string): { found: boolean; value: unknown } {
  let cur: unknown = tree;
  for (const k of dotted.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur) || !(k in (cur as Tree))) return { found: false, value: undefined };
    cur = (cur as Tree)[k];
  }
  return { found: true, value: cur };
}

/** A value as Hydra parses it back to the same thing. */
export function hydraValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(hydraValue).join(',')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Tree).map(([k, x]) => `${k}:${hydraValue(x)}`).join(',')}}`;
  const s = String(v);
  // Plain when Hydra would read it back as the same string; quoted otherwise.
  return /^[A-Za-z0-9_./@:%<>+-]+$/.test(s) && !/^(true|false|null|[-+]?\d[\d._eE+-]*)$/i.test(s) ? s : `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The key as an override must name it: plain when the recipe has it, `++` when it does not (or without a recipe to ask). */
export function keyFor(recipe: Tree | null, key: string): string {
  if (key.startsWith('+')) return key;
  return recipe && getKey(recipe, key).found ? key : `++${key}`;
}

export function override(recipe: Tree | null, key: string, value: unknown): string {
  return `${keyFor(recipe, key)}=${hydraValue(value)}`;
}

/** An override written by hand (`nemo_rl.overrides`, a recovery policy): its key spelled for this recipe. */
export function respell(recipe: Tree | null, raw: string): string {
  const eq = raw.indexOf('=');
  return eq < 0 ? raw : `${keyFor(recipe, raw.slice(0, eq))}${raw.slice(eq)}`;
}

/** The leaves of a section as dotted keys (the pipeline's `trainer:` section, as overrides). */
export function leaves(tree: Tree, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) out.push(...leaves(v as Tree, key));
    else out.push([key, v]);
  }
  return out;
}

/** Rows of a JSONL file (null when missing). */
export function countRows(path: string): number | null {
  if (!existsSync(path)) return null;
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).length;
}
