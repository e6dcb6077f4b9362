#!/usr/bin/env node
// Entry point of the `grpo` CLI (bin of package.json): TypeScript sources run through tsx.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';
// The worker lives as long as a run and mostly waits: a small young generation keeps its
// resident memory low (scripts/bench-overhead.ts measures it) at no cost that matters.
if (process.argv[2] === 'worker' || process.argv[2] === 'quickstart') setFlagsFromString('--max-semi-space-size=1 --optimize-for-size');
register();
const { runCli } = await import('../src/cli/main.ts');
await runCli(process.argv.slice(2));
