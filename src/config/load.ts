/**
 * Loading, overriding and validating pipeline configs. Every error names the field path, what was
 * expected and what was given; secrets are refused; suspicious-but-valid settings yield warnings.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, parseDocument } from 'yaml';
import type { z } from 'zod';
import { pipelineConfigSchema, type PipelineConfig } from './schema.js';
import { getBackend } from '../backends/index.js';
import { traitsOf } from '../backends/traits.js';

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], header = 'Invalid config') {
    super(`${header}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: PipelineConfig;
  warnings: string[];
  /** Absolute path of the config file (undefined for inline configs). */
  source?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Describe a given value for error messages, short and without leaking long strings. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `the integer ${v}` : `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (Array.isArray(v)) return `a list of ${v.length} item(s)`;
  if (typeof v === 'object') return `a mapping with keys [${Object.keys(v as object).join(', ')}]`;
  return typeof v;
}

function getAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function fieldName(path: PropertyKey[]): string {
  return path.length ? path.map(String).join('.') : '(top level)';
}

/** Turn zod issues into "field: expected X, got Y" lines. */
export function formatIssues(issues: z.core.$ZodIssue[], raw: unknown): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    const field = fieldName(path);
    const given = describeValue(getAt(raw, path));
    switch (issue.code) {
      case 'unrecognized_keys': {
        const parent = getAt(raw, path);
        for (const key of issue.keys) {
          const full = fieldName([...path, key]);
          out.push(
            `${full}: unknown key (not a field of ${field === '(top level)' ? 'the config' : field}; check the spelling)` +
              (parent && typeof parent === 'object' ? `; given ${describeValue((parent as Record<string, unknown>)[key])}` : ''),
          );
        }
        break;
      }
      case 'invalid_type':
        out.push(`${field}: expected ${issue.expected === 'int' ? 'an integer' : issue.expected}, got ${given}`);
        break;
      case 'too_small': {
        const min = Number(issue.minimum);
        const bound = issue.inclusive === false ? `greater than ${min}` : `at least ${min}`;
        const what = issue.origin === 'string' ? `a string of length ${bound}` : `a number ${bound}`;
        out.push(`${field}: expected ${what}, got ${given}`);
        break;
      }
      case 'too_big': {
        const max = Number(issue.maximum);
        const bound = issue.inclusive === false ? `less than ${max}` : `at most ${max}`;
        out.push(`${field}: expected a number ${bound}, got ${given}`);
        break;
      }
      case 'invalid_value':
        out.push(`${field}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${given}`);
        break;
      case 'invalid_format':
        out.push(`${field}: expected ${issue.message.replace(/^Invalid string: must match pattern .*$/, 'a matching string')}, got ${given}`);
        break;
      default:
        out.push(`${field}: ${issue.message}, got ${given}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Secrets

const SECRET_KEY = /(^|[_.-])(hf_?token|token|api_?key|apikey|secret|secret_?key|password|passwd|access_?key|auth_?token)$/i;
const SECRET_KEY_NAMES = /^(HF_TOKEN|HUGGING_FACE_HUB_TOKEN|HUGGINGFACE_TOKEN|WANDB_API_KEY|OPENAI_API_KEY|TEMPORAL_API_KEY)$/i;
const SECRET_VALUE: RegExp[] = [
  /\bhf_[A-Za-z0-9]{20,}\b/, // Hugging Face tokens
  /\bsk-[A-Za-z0-9_-]{20,}\b/, // OpenAI-style API keys
  /\bgh[pousr]_[A-Za-z0-9]{20,}\b/, // GitHub tokens
  /\b(HF_TOKEN|WANDB_API_KEY|HUGGING_FACE_HUB_TOKEN)\s*=\s*\S+/i, // env assignments
  /\bwandb_v1_[A-Za-z0-9_]{20,}\b/,
];

/** Find secrets (by key name or value shape) anywhere in a config tree. Returns field paths. */
export function findSecrets(obj: unknown, path: string[] = []): string[] {
  const hits: string[] = [];
  if (typeof obj === 'string') {
    if (SECRET_VALUE.some((re) => re.test(obj))) hits.push(path.join('.') || '(value)');
    return hits;
  }
  if (Array.isArray(obj)) {
    obj.forEach((v, i) => hits.push(...findSecrets(v, [...path, String(i)])));
    return hits;
  }
  if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
      const p = [...path, k];
      const keyLooksSecret = SECRET_KEY_NAMES.test(k) || (SECRET_KEY.test(k) && v !== null && v !== '' && typeof v !== 'boolean');
      if (keyLooksSecret && (typeof v === 'string' || typeof v === 'number')) hits.push(p.join('.'));
      else hits.push(...findSecrets(v, p));
    }
  }
  return hits;
}

export function secretProblems(obj: unknown): string[] {
  return [...new Set(findSecrets(obj))].map(
    (field) =>
      `${field}: looks like a secret (token / API key). Secrets are refused in configs: they would be stored in ` +
      `workflow history and run directories. Put HF_TOKEN / WANDB_API_KEY in the environment of the worker ` +
      `(e.g. \`HF_TOKEN=... npm run grpo -- worker\`) instead.`,
  );
}

// ---------------------------------------------------------------------------------------------
// --set overrides

/** Parse `a.b.c=value`; value is a YAML scalar (`6` → number, `true` → boolean, `null`, `"x"`). */
export function parseSet(expr: string): { path: string[]; value: unknown } {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new ConfigError([`--set ${JSON.stringify(expr)}: expected key=value, e.g. --set trainer.grpo.max_num_steps=4`], 'Invalid override');
  const key = expr.slice(0, eq).trim();
  const rawValue = expr.slice(eq + 1);
  const path = key.split('.');
  if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype'))
    throw new ConfigError([`--set ${JSON.stringify(expr)}: "${key}" is not a valid dotted field path`], 'Invalid override');
  let value: unknown;
  try {
    value = rawValue.trim() === '' ? '' : parseYaml(rawValue);
  } catch (e) {
    throw new ConfigError([`--set ${key}: value ${JSON.stringify(rawValue)} is not a YAML scalar (${(e as Error).message.split('\n')[0]})`], 'Invalid override');
  }
  return { path, value };
}

export function applySets(raw: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const s of sets) {
    const { path, value } = parseSet(s);
    let cur: Record<string, unknown> = out;
    for (let i = 0; i < path.length - 1; i++) {
      const k = path[i]!;
      const next = cur[k];
      if (next === undefined || next === null) cur[k] = {};
      else if (typeof next !== 'object' || Array.isArray(next))
        throw new ConfigError([`--set ${path.join('.')}: ${path.slice(0, i + 1).join('.')} is ${describeValue(next)}, not a mapping`], 'Invalid override');
      cur = cur[k] as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Warnings: the pipeline's own sections here; each backend lints its trainer section itself
// (src/backends/*: the built-in trainer's rules live in the trainer, `python -m grpo_trainer check-config`).

export function configWarnings(cfg: PipelineConfig): string[] {
  const w: string[] = [];
  const steps = cfg.trainer.grpo.max_num_steps;
  if (cfg.run.segment_steps > steps && !traitsOf(cfg.backend).singleLaunch)
    w.push(`run.segment_steps=${cfg.run.segment_steps} is larger than grpo.max_num_steps=${steps}: training runs as one segment.`);
  if (cfg.model.source === 'hf' && !cfg.model.name)
    w.push('model.source=hf without model.name: set model.name to a Hugging Face model id (e.g. HuggingFaceTB/SmolLM2-135M-Instruct).');
  if (cfg.run.trainer_address_space_mb && cfg.ray.enabled)
    w.push('run.trainer_address_space_mb limits the trainer process only; with ray.enabled=true training runs in Ray workers, which the limit does not cover.');
  if (cfg.ray.address && !cfg.ray.enabled)
    w.push(`ray.address=${cfg.ray.address} with ray.enabled=false: the trainer runs without Ray, so the address is not used.`);
  w.push(...getBackend(cfg.backend).lint(cfg).warnings);
  return w;
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Validate an already-parsed config object (inline config or parsed YAML). */
export function validateConfig(raw: unknown, sets: string[] = [], source?: string): LoadedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError([`(top level): expected a mapping of config sections (backend, run, trainer, ...), got ${describeValue(raw)}`]);
  const withSets = applySets(raw as Record<string, unknown>, sets);
  const secrets = secretProblems(withSets);
  if (secrets.length) throw new ConfigError(secrets, 'Refused config');
  const parsed = pipelineConfigSchema.safeParse(withSets);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues, withSets));
  const config = parsed.data;
  const lintErrors = getBackend(config.backend).lint(config).errors;
  if (lintErrors.length) throw new ConfigError(lintErrors);
  // A backend's own section gets its defaults when the config leaves it out.
  if (getBackend(config.backend).ownSection === 'nemo_rl' && !config.nemo_rl) config.nemo_rl = pipelineConfigSchemaNemoDefaults();
  return { config, warnings: configWarnings(config), ...(source ? { source } : {}) };
}

function pipelineConfigSchemaNemoDefaults(): NonNullable<PipelineConfig['nemo_rl']> {
  return pipelineConfigSchema.shape.nemo_rl.unwrap().parse({});
}

/** Parse YAML text with line/column in errors. */
export function parseConfigText(text: string, label: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    throw new ConfigError([`${label}: broken YAML${where}: ${e.message.split('\n')[0]}`], 'Cannot read config');
  }
  return doc.toJS({ maxAliasCount: 100 }) as Json;
}

export function loadConfigFile(path: string, sets: string[] = []): LoadedConfig {
  const abs = resolve(path);
  if (!existsSync(abs))
    throw new ConfigError([`${path}: no such file (looked at ${abs}). The shipped configs are configs/builtin-cpu.yaml and configs/nemo-rl-nemotron-nano-9b.yaml`], 'Cannot read config');
  if (statSync(abs).isDirectory()) throw new ConfigError([`${path}: is a directory, expected a YAML file`], 'Cannot read config');
  const text = readFileSync(abs, 'utf8');
  const raw = parseConfigText(text, path);
  if (raw === null || raw === undefined) throw new ConfigError([`${path}: the file is empty`], 'Cannot read config');
  return validateConfig(raw, sets, abs);
}
