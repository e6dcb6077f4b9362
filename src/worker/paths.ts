import { fileURLToPath } from 'node:url';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
export const BUNDLER_PATH = fileURLToPath(new URL('./bundle.ts', import.meta.url));
