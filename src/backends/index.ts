import type { BackendAdapter } from './types.js';
import { builtinBackend } from './builtin.js';
import { nemoRlBackend } from './nemo_rl/index.js';

export function getBackend(name: string): BackendAdapter {
  if (name === 'builtin') return builtinBackend;
  if (name === 'nemo_rl') return nemoRlBackend;
  throw new Error(`unknown backend ${JSON.stringify(name)} (expected builtin or nemo_rl)`);
}
export type { BackendAdapter, BackendContext, CommandSpec, EnvSpec, SegmentHandoff } from './types.js';
