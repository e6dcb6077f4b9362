#!/usr/bin/env node
// Entry point of the `grpo` CLI (bin of package.json): TypeScript sources run through tsx.
import { register } from 'tsx/esm/api';
register();
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
