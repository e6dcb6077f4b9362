/**
 * `grpo resume <runId>`: continue a failed, cancelled or terminated run from its newest complete
 * checkpoint, with the config it was started with, as a new execution of the same workflow id
 * (the run id, its directories and checkpoints stay; its history links to the closed execution).
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { WORKFLOW_TYPE, type TrainingRunInput } from '../../common/types.js';
import { CliError, connectClient } from '../client.js';
import { flag, JSON_OPTION, list, required, SET_OPTION, type Command } from '../command.js';
import { say } from '../output.js';
import { follow } from './run.js';

const RESUMABLE = ['FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT'];

/** The input the run was first started with (the newest execution's, less the internal hand-over). */
async function startInput(client: Client, workflowId: string): Promise<TrainingRunInput> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new CliError(`run ${workflowId}: its history has no start input to resume with`, 1);
  const input = defaultPayloadConverter.fromPayload<TrainingRunInput>(payload);
  delete input.carry;
  delete input.resume;
  return input;
}

/** Start the new execution; returns its Temporal run id. Exported for tests and the schedule path. */
export async function resumeRun(client: Client, workflowId: string, extraSet: string[] = []): Promise<{ executionRunId: string; resumedFrom: string; endedAs: string }> {
  let desc;
  try {
    desc = await client.workflow.getHandle(workflowId).describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new CliError(`no run with id ${workflowId} (npm run grpo -- list shows the runs)`, 2);
    throw e;
  }
  if (desc.type !== WORKFLOW_TYPE) throw new CliError(`${workflowId} is a ${desc.type} workflow, not a training run`, 2);
  const endedAs = desc.status.name;
  if (endedAs === 'COMPLETED')
    throw new CliError(`run ${workflowId} completed; there is nothing to resume (to train further, start a new run: npm run grpo -- run <config> --set trainer.grpo.max_num_steps=N)`, 2);
  if (endedAs === 'RUNNING') throw new CliError(`run ${workflowId} is still running (npm run grpo -- status ${workflowId})`, 2);
  if (!RESUMABLE.includes(endedAs)) throw new CliError(`run ${workflowId} ended as ${endedAs}; only ${RESUMABLE.join(', ').toLowerCase()} runs can be resumed`, 2);
  const input = await startInput(client, workflowId);
  const next: TrainingRunInput = {
    ...input,
    ...(extraSet.length ? { set: [...(input.set ?? []), ...extraSet] } : {}),
    resume: { executionRunId: desc.runId, endedAs },
  };
  const handle = await client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: desc.taskQueue,
    workflowId,
    args: [next],
    memo: { resumedFrom: { executionRunId: desc.runId, endedAs } },
  });
  return { executionRunId: handle.firstExecutionRunId, resumedFrom: desc.runId, endedAs };
}

export const resume: Command = {
  name: 'resume',
  brief: 'continue a failed, cancelled or terminated run from its newest checkpoint',
  args: '<runId> [--set k=v]... [--detach]',
  summary:
    'Start a new execution of the run with the config it was started with: it continues from its newest complete checkpoint ' +
    '(steps already checkpointed are not redone). Refused when the run completed, still runs, or its checkpoints were made ' +
    'with another model, data set or backend than the config now gives.',
  details: [
    '--set adds overrides on top of the original ones (e.g. a smaller trainer.policy.train_micro_batch_size after an OOM).',
    'temporal workflow reset fits instead when the workflow code itself should replay from an earlier event of the same',
    'execution (e.g. after fixing a bug in it); grpo resume starts fresh from the files the run left.',
  ],
  options: {
    set: SET_OPTION,
    detach: { type: 'boolean', help: 'start the new execution and return at once' },
    json: { ...JSON_OPTION, help: 'with --detach: print {runId, executionRunId, resumedFrom, endedAs} as JSON' },
  },
  async run(p) {
    const id = required(this, p, 0, '<runId>');
    const json = flag(p, 'json');
    if (json && !flag(p, 'detach')) throw new CliError('--json needs --detach', 2);
    const { client, connection } = await connectClient();
    try {
      const r = await resumeRun(client, id, list(p, 'set'));
      if (json) {
        say(JSON.stringify({ runId: id, ...r }, null, 2));
        return 0;
      }
      say(`Resuming run ${id} (the execution that ended ${r.endedAs.toLowerCase()} was ${r.resumedFrom}; new execution ${r.executionRunId}).`);
      if (flag(p, 'detach')) return 0;
      say('Following (Ctrl-C detaches; the run keeps going).');
      return await follow(client, id);
    } finally {
      await connection.close();
    }
  },
};
