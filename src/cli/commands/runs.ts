/** `grpo status`, `grpo list`, `grpo cancel`, `grpo logs`: looking at and stopping runs. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { redact } from '../../common/redact.js';
import { runPaths, stateDir } from '../../common/state.js';
import { CliError, connectClient } from '../client.js';
import { flag, JSON_OPTION, required, str, type Command } from '../command.js';
import { runQuery, type RunFilters } from '../../search/query.js';
import { renderStatus } from '../follow.js';
import { say } from '../output.js';
import { queryStatus } from './run.js';

export const status: Command = {
  name: 'status',
  brief: 'stage, step/total, metrics, checkpoints, failures, ledger',
  args: '<id>',
  summary: 'Stage, step/total, latest metrics, checkpoints and their metric, the best checkpoint, attempts, failures and the recovery ledger, elapsed time.',
  options: { json: JSON_OPTION },
  async run(p) {
    const id = required(this, p, 0, '<id>');
    const { client, connection } = await connectClient();
    try {
      const handle = client.workflow.getHandle(id);
      let desc;
      try {
        desc = await handle.describe();
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) throw new CliError(`no run with id ${id} (npm run grpo -- list shows the runs)`, 2);
        throw e;
      }
      const s = await queryStatus(handle);
      if (flag(p, 'json')) {
        say(JSON.stringify({ workflowStatus: desc.status.name, ...(s ?? {}) }, null, 2));
        return 0;
      }
      if (!s) {
        say(`Run ${id}: workflow ${desc.status.name}; the status query needs a running worker (npm run grpo -- worker).`);
        return 0;
      }
      say(renderStatus(s, desc.status.name));
      return 0;
    } finally {
      await connection.close();
    }
  },
};

export const listRuns: Command = {
  name: 'list',
  brief: 'training runs known to the server',
  args: '',
  summary: 'The training runs the Temporal server knows, newest first, filtered by their search attributes.',
  details: [
    'Filters match the run search attributes (GrpoBackend, GrpoModel, GrpoConfig, GrpoState, GrpoBestAccuracy); the same',
    "query works in the Web UI and in: temporal workflow list --query \"GrpoState = 'completed' AND GrpoBestAccuracy >= 0.3\"",
  ],
  options: {
    json: JSON_OPTION,
    backend: { type: 'string', value: 'NAME', help: 'only runs of this backend (builtin, nemo_rl)' },
    model: { type: 'string', value: 'NAME', help: 'only runs of this model (model.name, or model.source)' },
    config: { type: 'string', value: 'NAME', help: 'only runs of this config (file name without .yaml)' },
    state: { type: 'string', value: 'STATE', help: 'only runs in this state (running, completed, failed, cancelled)' },
    'min-accuracy': { type: 'string', value: 'X', help: "only runs whose best checkpoint's metric is at least X" },
  },
  async run(p) {
    const min = str(p, 'min-accuracy');
    if (min !== undefined && !Number.isFinite(Number(min))) throw new CliError(`--min-accuracy: expected a number, got ${JSON.stringify(min)}`, 2);
    const filters: RunFilters = { backend: str(p, 'backend'), model: str(p, 'model'), config: str(p, 'config'), state: str(p, 'state'), minAccuracy: min === undefined ? undefined : Number(min) };
    const { client, connection } = await connectClient();
    try {
      const rows: { runId: string; status: string; state: string | null; backend: string | null; config: string | null; best: number | null; startTime: string; closeTime: string | null }[] = [];
      const seen = new Set<string>();
      const attr = (sa: unknown, name: string) => ((sa as Record<string, unknown[]> | undefined)?.[name]?.[0] ?? null) as never;
      try {
        for await (const w of client.workflow.list({ query: runQuery(filters) })) {
          // A resumed run has several closed executions: the newest speaks for it.
          if (seen.has(w.workflowId)) continue;
          seen.add(w.workflowId);
          rows.push({
            runId: w.workflowId, status: w.status.name, state: attr(w.searchAttributes, 'GrpoState'), backend: attr(w.searchAttributes, 'GrpoBackend'),
            config: attr(w.searchAttributes, 'GrpoConfig'), best: attr(w.searchAttributes, 'GrpoBestAccuracy'),
            startTime: w.startTime.toISOString(), closeTime: w.closeTime?.toISOString() ?? null,
          });
        }
      } catch (e) {
        if (Object.values(filters).some((v) => v !== undefined))
          throw new CliError(`the server cannot filter by the run search attributes (${(e as Error).message.split('\n')[0]}); they are registered by the worker on its first run`, 1);
        throw e;
      }
      if (flag(p, 'json')) say(JSON.stringify(rows, null, 2));
      else if (!rows.length) say(Object.values(filters).some((v) => v !== undefined) ? 'No training runs match.' : 'No training runs yet. Start one with: npm run grpo -- run configs/builtin-cpu.yaml');
      else
        for (const r of rows)
          say(`${r.runId.padEnd(40)} ${r.status.padEnd(11)} ${(r.backend ?? '').padEnd(8)} ${(r.config ?? '').padEnd(14)} best ${r.best === null ? '-    ' : r.best.toFixed(3)}  started ${r.startTime}${r.closeTime ? `  closed ${r.closeTime}` : ''}`);
      return 0;
    } finally {
      await connection.close();
    }
  },
};

export const cancel: Command = {
  name: 'cancel',
  brief: 'cancel a run (stops its trainer\'s process group and Ray)',
  args: '<id>',
  summary: "Cancel a run: its trainer's process group and Ray head are stopped, the summary and cleanup still run, and the run is recorded as cancelled.",
  options: { json: JSON_OPTION },
  async run(p) {
    const id = required(this, p, 0, '<id>');
    const { client, connection } = await connectClient();
    try {
      try {
        await client.workflow.getHandle(id).cancel();
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) throw new CliError(`no running run with id ${id}`, 2);
        throw e;
      }
      if (flag(p, 'json')) say(JSON.stringify({ runId: id, cancelRequested: true }, null, 2));
      else say(`Cancellation requested for ${id}: the trainer's process group and the run's Ray head are stopped, then the run is recorded as cancelled.`);
      return 0;
    } finally {
      await connection.close();
    }
  },
};

export const logs: Command = {
  name: 'logs',
  brief: 'tail of the run\'s trainer log and where the logs are',
  args: '<id> [--lines N]',
  summary: "The run's log files and the tail of trainer.log and metrics.jsonl.",
  options: { lines: { type: 'string', value: 'N', default: '40', help: 'lines of each tail' } },
  async run(p) {
    const id = required(this, p, 0, '<id>');
    const n = Number(str(p, 'lines'));
    if (!Number.isInteger(n) || n < 1) throw new CliError(`--lines: expected a positive whole number, got ${str(p, 'lines')}`, 2);
    let runDir = runPaths(stateDir(), id).runDir;
    if (!existsSync(runDir)) {
      try {
        const { client, connection } = await connectClient();
        const s = await queryStatus(client.workflow.getHandle(id));
        await connection.close();
        if (s?.runDir) runDir = s.runDir;
      } catch {
        /* fall through */
      }
    }
    const logDir = join(runDir, 'logs');
    if (!existsSync(logDir)) throw new CliError(`no logs for ${id} under ${logDir} (is GRPO_STATE_DIR the worker's?)`, 2);
    say(`Logs of ${id} in ${logDir}:`);
    for (const f of readdirSync(logDir).sort()) say(`  ${f}`);
    for (const name of ['trainer.log', 'metrics.jsonl']) {
      const path = join(logDir, name);
      if (!existsSync(path)) continue;
      const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
      say(`\n--- ${name} (last ${Math.min(n, lines.length)} lines) ---`);
      say(redact(lines.slice(-n).join('\n')));
    }
    say(`\nWorkflow history: temporal workflow show --workflow-id ${id}`);
    return 0;
  },
};
