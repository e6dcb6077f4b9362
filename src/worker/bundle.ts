/**
 * Bundle the workflow code into a file (`node --import tsx src/worker/bundle.ts <out.js>`).
 * The long-running worker runs this in a child process: webpack's memory then never lands in the
 * worker's resident set, which stays small for the whole life of a run.
 */
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from './paths.js';

const out = process.argv[2];
if (!out) throw new Error('usage: bundle.ts <out.js>');
const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never });
writeFileSync(out, code);
