/** `grpo status`, `grpo list`, `grpo cancel`, `grpo logs`: looking at and stopping runs. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { redact } from '../../common/redact.js';
import { runPaths, stateDir } from '../../common/state.js';
import { CliError, connectClient, UnreachableError } from '../client.js';
import { listRunsOnDisk, readRunFromDisk, renderDiskRun, type DiskRun } from '../disk.js';
import { webUiBase, workflowUrl } from '../../server/ui.js';
import { flag, JSON_OPTION, required, str, type Command } from '../command.js';
import { runQuery, type RunFilters } from '../../search/query.js';
import { renderStatus } from '../follow.js';
import { say, warn } from '../output.js';
import { queryStatus } from './run.js';

const QUERY_WAIT_MS = 8000;

/** `grpo status` from the run dir, saying so and why. */
function statusFromDisk(json: boolean, d: DiskRun, workflowStatus: string | null, why: string, ui: string | null): number {
  if (json) say(JSON.stringify({ workflowStatus, source: 'disk', note: why, ...d, ...(ui ? { webUiUrl: ui } : {}) }, null, 2));
  else {
    say(`Run ${d.runId}${workflowStatus ? `: workflow ${workflowStatus}` : ''}. From disk (${d.runDir}), because ${why}:\n`);
    say(renderDiskRun(d));
    if (ui) say(`Web UI: ${ui}`);
  }
  return 0;
}

export const status: Command = {
  name: 'status',
  brief: 'stage, step/total, metrics, checkpoints, failures, ledger',
  args: '<id> [--json]',
  summary: 'Stage, step/total, latest metrics, checkpoints and their metric, the best checkpoint, attempts, failures and the recovery ledger, elapsed time.',
  details: [
    'The worker answers this (the run\'s status query). With no worker polling, or no server reachable, it is read from the run dir',
    'instead (<state>/runs/<id>: summary.json, else checkpoints and metrics), and says so.',
  ],
  options: { json: JSON_OPTION },
  async run(p) {
    const id = required(this, p, 0, '<id>');
    const json = flag(p, 'json');
    const state = stateDir();
    let conn: Awaited<ReturnType<typeof connectClient>>;
    try {
      conn = await connectClient();
    } catch (e) {
      if (!(e instanceof UnreachableError)) throw e;
      const d = readRunFromDisk(state, id);
      if (!d) throw e;
      return statusFromDisk(json, d, null, `the Temporal server at ${e.target.address} did not answer (${e.reason})`, null);
    }
    const { client, connection, target } = conn;
    try {
      const handle = client.workflow.getHandle(id);
      const base = await webUiBase(target, state);
      const ui = base ? workflowUrl(base, target.namespace, id) : null;
      let desc;
      try {
        desc = await handle.describe();
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError)) throw e;
        const d = readRunFromDisk(state, id);
        if (d) return statusFromDisk(json, d, null, `the Temporal server at ${target.address} (namespace ${target.namespace}) has no run ${id}`, null);
        throw new CliError(`no run with id ${id} (npm run grpo -- list shows the runs)`, 2);
      }
      // A worker answers in well under a second; with none, the server would hold the query for half a minute.
      const s = await client.withDeadline(Date.now() + QUERY_WAIT_MS, () => queryStatus(handle));
      if (!s) {
        const why = `no worker answered the status query within ${QUERY_WAIT_MS / 1000}s (npm run grpo -- worker starts one)`;
        const d = readRunFromDisk(state, id);
        if (d) return statusFromDisk(json, d, desc.status.name, why, ui);
        if (json) say(JSON.stringify({ workflowStatus: desc.status.name, source: 'server', note: `${why}; ${runPaths(state, id).runDir} does not exist`, ...(ui ? { webUiUrl: ui } : {}) }, null, 2));
        else say(`Run ${id}: workflow ${desc.status.name}; ${why}, and ${runPaths(state, id).runDir} does not exist (is GRPO_STATE_DIR the worker's?).${ui ? `\nWeb UI: ${ui}` : ''}`);
        return 0;
      }
      if (json) {
        say(JSON.stringify({ workflowStatus: desc.status.name, source: 'worker', ...s, ...(ui ? { webUiUrl: ui } : {}) }, null, 2));
        return 0;
      }
      say(renderStatus(s, desc.status.name));
      if (ui) say(`Web UI: ${ui}`);
      return 0;
    } finally {
      await connection.close();
    }
  },
};

interface RunRow {
  runId: string;
  /** The workflow's status (null: read from disk, the server did not answer). */
  status: string | null;
  state: string | null;
  backend: string | null;
  config: string | null;
  best: number | null;
  startTime: string | null;
  closeTime: string | null;
  source: 'server' | 'disk';
}

const rowLine = (r: RunRow) =>
  `${r.runId.padEnd(40)} ${(r.status ?? r.state ?? 'no summary').padEnd(11)} ${(r.backend ?? '').padEnd(8)} ${(r.config ?? '').padEnd(14)} best ${r.best === null ? '-    ' : r.best.toFixed(3)}  ${r.startTime ? `started ${r.startTime}` : ''}${r.closeTime ? `  closed ${r.closeTime}` : ''}`;

/** `grpo list` with the server unreachable: the run dirs of this state dir, filtered by what their summaries say. */
function listFromDisk(json: boolean, f: RunFilters, e: UnreachableError): number {
  const state = stateDir();
  const all = listRunsOnDisk(state);
  if (!all.length) throw e;
  const rows: RunRow[] = all
    .map((d) => ({ runId: d.runId, status: null, state: d.summary?.state ?? null, backend: d.backend, config: d.config, best: d.best?.metric ?? null, startTime: d.summary?.startedAt ?? null, closeTime: d.summary?.finishedAt ?? null, source: 'disk' as const }))
    .filter((r) => (!f.backend || r.backend === f.backend) && (!f.config || r.config === f.config) && (!f.state || r.state === f.state) && (f.minAccuracy === undefined || (r.best ?? -Infinity) >= f.minAccuracy));
  warn(`The Temporal server at ${e.target.address} did not answer (${e.reason}); these are the run dirs in ${join(state, 'runs')}, from disk${f.model ? ' (--model is not filtered on disk)' : ''}.`);
  if (json) say(JSON.stringify(rows, null, 2));
  else if (!rows.length) say('No run dir matches.');
  else for (const r of rows) say(rowLine(r));
  return 0;
}

export const listRuns: Command = {
  name: 'list',
  brief: 'training runs known to the server',
  args: '',
  summary: 'The training runs the Temporal server knows, newest first, filtered by their search attributes.',
  details: [
    'With the server unreachable it lists the run dirs of the state dir instead (what their summary.json says), and says so.',
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
    let conn: Awaited<ReturnType<typeof connectClient>>;
    try {
      conn = await connectClient();
    } catch (e) {
      if (!(e instanceof UnreachableError)) throw e;
      return listFromDisk(flag(p, 'json'), filters, e);
    }
    const { client, connection } = conn;
    try {
      const rows: RunRow[] = [];
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
            startTime: w.startTime.toISOString(), closeTime: w.closeTime?.toISOString() ?? null, source: 'server',
          });
        }
      } catch (e) {
        if (Object.values(filters).some((v) => v !== undefined))
          throw new CliError(`the server cannot filter by the run search attributes (${(e as Error).message.split('\n')[0]}); they are registered by the worker on its first run`, 1);
        throw e;
      }
      if (flag(p, 'json')) say(JSON.stringify(rows, null, 2));
      else if (!rows.length) say(Object.values(filters).some((v) => v !== undefined) ? 'No training runs match.' : 'No training runs yet. Start one with: npm run grpo -- run configs/builtin-cpu.yaml');
      else for (const r of rows) say(rowLine(r));
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
  args: '<id> [--lines N] [--json]',
  summary: "The run's log files and the tail of trainer.log and metrics.jsonl.",
  options: { lines: { type: 'string', value: 'N', default: '40', help: 'lines of each tail' }, json: { ...JSON_OPTION, help: 'print {runId, logDir, files, tails} as JSON' } },
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
    const files = readdirSync(logDir).sort();
    const tails: Record<string, string[]> = {};
    for (const name of ['trainer.log', 'metrics.jsonl']) {
      const path = join(logDir, name);
      if (existsSync(path)) tails[name] = redact(readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).join('\n')).split('\n');
    }
    if (flag(p, 'json')) {
      say(JSON.stringify({ runId: id, logDir, files, tails }, null, 2));
      return 0;
    }
    say(`Logs of ${id} in ${logDir}:`);
    for (const f of files) say(`  ${f}`);
    for (const [name, lines] of Object.entries(tails)) {
      say(`\n--- ${name} (last ${lines.length} lines) ---`);
      say(lines.join('\n'));
    }
    say(`\nWorkflow history: temporal workflow show --workflow-id ${id}`);
    return 0;
  },
};
