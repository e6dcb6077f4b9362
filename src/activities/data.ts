/** The prepareData stage: the train and validation splits the backend trains and evaluates on. */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { getBackend } from '../backends/index.js';
import type { DataInfo, EnvInfo, ResolvedRun } from '../common/types.js';
import { failureFromTrainer, runSimple } from './failure.js';
import { backendCtx } from './support.js';

export async function prepareData(input: { run: ResolvedRun; env: EnvInfo }): Promise<DataInfo> {
  const { run, env } = input;
  const backend = getBackend(run.config.backend);
  const d = backend.data(backendCtx(run, { env }));
  const info: DataInfo = { dataDir: d.dir, train: d.train, validation: d.validation, manifest: d.manifest };
  if (!d.command) {
    // Data the backend does not prepare (NeMo Gym's files in a NeMo RL checkout): check it is there and parses.
    const problem = backend.checkData?.(d) ?? null;
    if (problem) throw ApplicationFailure.create({ type: 'InvalidData', nonRetryable: true, message: problem });
    return info;
  }
  if (existsSync(d.manifest) && existsSync(d.train) && existsSync(d.validation)) return info;
  await mkdir(d.dir, { recursive: true });
  const r = await runSimple(run, d.command, 'prepare-data.log', 'prepareData');
  if (r.code !== 0) await failureFromTrainer(run, 'prepareData', r, 'prepare-data', { failurePath: join(d.dir, 'failure.json') });
  return info;
}
