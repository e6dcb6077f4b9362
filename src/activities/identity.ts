/**
 * Part of the fetchModel stage: a run's checkpoints belong to one backend, model and data set. The
 * first execution records them in <runDir>/run-identity.json; any later execution of the same run
 * (`grpo resume`, a re-used run id) must match, or it is refused with what differs, before a
 * trainer could load checkpoints made from something else.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { DataInfo, ModelInfo, ResolvedRun } from '../common/types.js';

export interface RunIdentity {
  backend: string;
  model: string;
  modelFingerprint: string;
  dataFingerprint: string;
}

function fileHash(...paths: string[]): string {
  const h = createHash('sha256');
  for (const p of paths) h.update(readFileSync(p));
  return h.digest('hex').slice(0, 16);
}

export async function checkRunIdentity(input: { run: ResolvedRun; model: ModelInfo; data: DataInfo }): Promise<RunIdentity> {
  const { run, model, data } = input;
  const m = run.config.model;
  const now: RunIdentity = {
    backend: run.config.backend,
    model: m.name ?? m.source,
    modelFingerprint: model.fingerprint,
    dataFingerprint: fileHash(data.train, data.validation),
  };
  const path = join(run.paths.runDir, 'run-identity.json');
  if (existsSync(path)) {
    const before = JSON.parse(readFileSync(path, 'utf8')) as RunIdentity;
    const differs = (Object.keys(now) as (keyof RunIdentity)[]).filter((k) => before[k] !== now[k]);
    if (differs.length)
      throw ApplicationFailure.create({
        type: 'InvalidConfig',
        nonRetryable: true,
        message:
          `run ${run.runId} cannot continue: its checkpoints were made with a different ${differs.join(', ')} ` +
          `(${differs.map((k) => `${k}: checkpoints ${before[k]}, config now ${now[k]}`).join('; ')}). ` +
          'Resume it with the config it was started with, or start a new run.',
      });
    return now;
  }
  await writeFile(`${path}.tmp`, JSON.stringify(now, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
  return now;
}
