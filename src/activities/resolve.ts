/** The validate stage: load and check the config (a file or inline), create the run dir, write the trainer's YAML. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { stringify as toYaml } from 'yaml';
import { ConfigError, loadConfigFile, validateConfig } from '../config/load.js';
import { runPaths, stateDir } from '../common/state.js';
import { RUN_ID_PATTERN, runIdOfWorkflow, type ResolvedRun, type TrainingRunInput } from '../common/types.js';

export interface ResolveRunInput extends TrainingRunInput {
  workflowId: string;
}

/** Load + validate the config (path or inline), create the run dir and write the trainer YAML. */
export async function resolveRun(input: ResolveRunInput): Promise<ResolvedRun> {
  const runId = input.runId ?? runIdOfWorkflow(input.workflowId);
  if (!RUN_ID_PATTERN.test(runId))
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: `runId: expected letters, digits, '.', '_' or '-' (max 100), got ${JSON.stringify(runId)}` });
  let loaded;
  try {
    loaded = input.configPath !== undefined ? loadConfigFile(input.configPath, input.set ?? []) : validateConfig(input.config, input.set ?? []);
  } catch (e) {
    if (e instanceof ConfigError) throw ApplicationFailure.create({ type: 'InvalidConfig', nonRetryable: true, message: e.message, details: [e.problems] });
    throw e;
  }
  const state = stateDir(loaded.config.state_dir);
  const paths = runPaths(state, runId);
  for (const d of [paths.runDir, paths.checkpointDir, paths.logDir, paths.evalDir]) await mkdir(d, { recursive: true });
  await writeFile(paths.trainerConfig, toYaml(loaded.config.trainer));
  await writeFile(join(paths.runDir, 'config.resolved.yaml'), toYaml(loaded.config));
  return {
    runId,
    config: loaded.config,
    warnings: loaded.warnings,
    paths,
    configSource: input.configPath !== undefined ? (loaded.source ?? input.configPath) : (input.source ?? 'inline'),
  };
}
