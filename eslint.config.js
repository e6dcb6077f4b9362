// ESLint (flat config) for the TypeScript sources and tests: typescript-eslint's recommended
// rules, plus the workflow sandbox rules. Workflow code must replay identically, so src/workflows/
// may not import Node built-ins, I/O libraries, the Temporal client/worker/activity SDKs or the
// activity-side modules (type-only imports are fine), nor touch process-wide or timing globals
// that Temporal does not make deterministic.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'fs/promises', 'http', 'http2',
  'https', 'module', 'net', 'os', 'path', 'perf_hooks', 'process', 'readline', 'stream', 'timers', 'tls', 'url', 'util',
  'v8', 'vm', 'worker_threads', 'zlib',
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.grpo/', '.whl/', '.gl/', 'docs/', 'trainer/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', Buffer: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', NodeJS: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    files: ['src/workflows/**/*.ts', 'src/backends/traits.ts', 'src/failures/types.ts', 'src/failures/policy.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...NODE_BUILTINS.map((name) => ({ name, message: 'workflow code runs in a deterministic sandbox: no Node built-ins (use an activity)' })),
            ...['@temporalio/activity', '@temporalio/client', '@temporalio/worker', 'execa', 'pino', 'yaml', 'zod'].map((name) => ({ name, message: 'not in workflow code (use an activity)' })),
          ],
          patterns: [
            { group: ['node:*'], message: 'workflow code runs in a deterministic sandbox: no Node built-ins (use an activity)' },
            { group: ['**/activities/*', '**/process/*', '**/environment/*', '**/common/exec*', '**/common/contracts*', '**/config/load*'], allowTypeImports: true, message: 'activity-side code: import its types only' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'require', 'fetch', 'performance', 'setImmediate', 'WeakRef', 'FinalizationRegistry', 'Buffer'].map((name) => ({ name, message: 'not deterministic or not available in the workflow sandbox' })),
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
