import { fileURLToPath } from 'node:url';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** The `grpo` command's wrapper (scripts/grpo): workers are started through it, for its malloc setting. */
export const GRPO_BIN = fileURLToPath(new URL('../../scripts/grpo', import.meta.url));
/** Environment for a worker started through GRPO_BIN: the wrapper runs this very Node binary. */
export const workerSpawnEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...env, GRPO_NODE: process.execPath });
export const BUNDLER_PATH = fileURLToPath(new URL('./bundle.ts', import.meta.url));
