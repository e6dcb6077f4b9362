/**
 * `grpo schedule ...`: recurring training runs as a Temporal Schedule. Each fire starts `trainingRun`
 * with the input `grpo run` sends; Temporal names a fire `<name>-<time>`, from which the workflow
 * derives the fire's own run id and run directory (runIdOfWorkflow).
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleHandle, type ScheduleSpecDescription } from '@temporalio/client';
import type { LoadedConfig } from '../../config/load.js';
import { runIdOfWorkflow, TASK_QUEUE, WORKFLOW_TYPE, type TrainingRunInput } from '../../common/types.js';
import { CliError, connectClient } from '../client.js';
import { flag, JSON_OPTION, list, required, SET_OPTION, str, usageLine, type Command } from '../command.js';
import { say } from '../output.js';
import { calendarText, checkCron, checkOverlap, checkScheduleName, formatDuration, parseDuration, renderSchedule, type OverlapPolicy, type ScheduleRunRow, type ScheduleView } from '../schedule-format.js';
import { loadRunConfig, trainingRunInput, warnIfNoWorker } from './run.js';

export const DEFAULT_CATCHUP_WINDOW = '10m';

export interface CreateScheduleOptions {
  name: string;
  configPath: string;
  set?: string[];
  /** Exactly one of cron (5 fields, UTC, or a macro such as @daily) and every (a duration: 30s, 6h, 1d). */
  cron?: string;
  every?: string;
  /** The task queue fires start on (default the pipeline's). */
  taskQueue?: string;
  overlap?: string;
  catchupWindow?: string;
  paused?: boolean;
  note?: string;
  /** The config, already loaded and checked (else it is loaded from configPath as `grpo run` does). */
  loaded?: LoadedConfig;
}

export interface CheckedSchedule {
  name: string;
  spec: { cronExpressions: string[] } | { intervals: { every: number }[] };
  specText: string;
  overlap: OverlapPolicy;
  catchupWindowMs: number;
}

/** Check a schedule's name, spec and policies before anything is loaded or sent (usage errors, exit 2). */
export function checkSchedule(o: Omit<CreateScheduleOptions, 'configPath'>): CheckedSchedule {
  const name = checkScheduleName(o.name);
  if (o.cron === undefined && o.every === undefined) throw new CliError('give one of --cron EXPR (e.g. "0 3 * * *") or --every DURATION (e.g. 6h)', 2);
  if (o.cron !== undefined && o.every !== undefined) throw new CliError('give only one of --cron and --every', 2);
  const overlap = checkOverlap(o.overlap ?? 'SKIP');
  const catchupWindowMs = parseDuration('--catchup-window', o.catchupWindow ?? DEFAULT_CATCHUP_WINDOW, 10_000);
  if (o.cron !== undefined) {
    const cron = checkCron(o.cron);
    return { name, spec: { cronExpressions: [cron] }, specText: `--cron "${cron}" (UTC)`, overlap, catchupWindowMs };
  }
  const every = parseDuration('--every', o.every!);
  return { name, spec: { intervals: [{ every }] }, specText: `--every ${formatDuration(every)}`, overlap, catchupWindowMs };
}

/** The config loaded and checked as `grpo run` does; its errors name the file. */
export async function loadScheduleConfig(configPath: string, sets: string[]): Promise<LoadedConfig> {
  try {
    return await loadRunConfig(configPath, sets);
  } catch (e) {
    if (e instanceof CliError && !e.message.includes(configPath)) throw new CliError(`${configPath}: ${e.message}`, e.exitCode);
    throw e;
  }
}

/** Create the schedule; its fires start `trainingRun` on `taskQueue` with the config inline, as `grpo run` does. */
export async function createSchedule(client: Client, o: CreateScheduleOptions): Promise<{ handle: ScheduleHandle; checked: CheckedSchedule; loaded: LoadedConfig }> {
  const checked = checkSchedule(o);
  const loaded = o.loaded ?? (await loadScheduleConfig(o.configPath, o.set ?? []));
  try {
    const handle = await client.schedule.create({
      scheduleId: checked.name,
      spec: checked.spec,
      action: { type: 'startWorkflow', workflowType: WORKFLOW_TYPE, taskQueue: o.taskQueue ?? TASK_QUEUE, workflowId: checked.name, args: [trainingRunInput(loaded)] },
      policies: { overlap: checked.overlap, catchupWindow: checked.catchupWindowMs, pauseOnFailure: true },
      state: { paused: !!o.paused, ...(o.note ? { note: o.note } : {}) },
      memo: { grpoConfig: loaded.source ?? o.configPath, grpoSet: o.set ?? [], grpoSpec: checked.specText },
    });
    return { handle, checked, loaded };
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) throw new CliError(`a schedule named ${checked.name} already exists (grpo schedule describe ${checked.name}); delete it or pick another name`, 2);
    if (e instanceof TypeError) throw new CliError(`${o.cron !== undefined ? '--cron' : '--every'}: the Temporal server refused the schedule spec: ${e.message}`, 2);
    throw e;
  }
}

/** Run `fn` on the named schedule; an unknown name is a usage error naming it. */
async function withSchedule<T>(name: string, fn: (client: Client, handle: ScheduleHandle) => Promise<T>): Promise<T> {
  const { client, connection } = await connectClient();
  try {
    return await fn(client, client.schedule.getHandle(name));
  } catch (e) {
    if (e instanceof ScheduleNotFoundError) throw new CliError(`no schedule named ${JSON.stringify(name)} (grpo schedule list shows them)`, 2);
    throw e;
  } finally {
    await connection.close();
  }
}

function specText(memo: Record<string, unknown> | undefined, spec: ScheduleSpecDescription | undefined): string {
  if (typeof memo?.grpoSpec === 'string') return memo.grpoSpec;
  const iv = spec?.intervals?.map((i) => `--every ${formatDuration(i.every)}`) ?? [];
  return [...iv, ...(spec?.calendars ?? []).map(calendarText)].join('; ') || '(none)';
}

/** What `grpo schedule describe` shows: the spec, policies, next fire times, and each recent fire's run and outcome. */
export async function scheduleView(client: Client, d: ScheduleDescription): Promise<ScheduleView> {
  const recentRuns: ScheduleRunRow[] = [];
  for (const a of d.info.recentActions) {
    const { workflowId, firstExecutionRunId } = a.action.workflow;
    let status = 'UNKNOWN';
    try {
      status = (await client.workflow.getHandle(workflowId, firstExecutionRunId).describe()).status.name;
    } catch {
      /* deleted by retention: leave it UNKNOWN */
    }
    recentRuns.push({ workflowId, runId: runIdOfWorkflow(workflowId), scheduledAt: a.scheduledAt.toISOString(), status });
  }
  const memo = d.memo;
  const input = d.action.args?.[0] as TrainingRunInput | undefined;
  return {
    name: d.scheduleId,
    spec: specText(memo, d.spec),
    config: typeof memo?.grpoConfig === 'string' ? memo.grpoConfig : (input?.configPath ?? input?.source ?? null),
    set: Array.isArray(memo?.grpoSet) ? (memo.grpoSet as string[]) : (input?.set ?? []),
    paused: d.state.paused,
    note: d.state.note || null,
    overlap: d.policies.overlap ?? 'SKIP',
    catchupWindow: formatDuration(d.policies.catchupWindow),
    pauseOnFailure: d.policies.pauseOnFailure,
    taskQueue: d.action.taskQueue ?? null,
    nextFireTimes: d.info.nextActionTimes.slice(0, 5).map((t) => t.toISOString()),
    recentRuns,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    actionsTaken: d.info.numActionsTaken,
    skippedForOverlap: d.info.numActionsSkippedOverlap,
    missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
  };
}

const name = (c: Command, p: Parameters<Command['run']>[0]) => required(c, p, 0, '<name>');

export const scheduleCreate: Command = {
  name: 'schedule create',
  brief: 'run a config on a cron or interval schedule (a Temporal Schedule)',
  args: '<name> <config> (--cron EXPR | --every DURATION) [--set k=v]... [--paused] [--json]',
  summary:
    "Create a Temporal Schedule that starts a training run of <config> (validated now, as grpo run does, and stored inline) at each fire. Each fire's run is <name>-<time>, with its own run directory. A fire while the previous run still runs is skipped (--overlap SKIP); a failed run pauses the schedule.",
  details: ['Examples:', '  grpo schedule create nightly configs/builtin-cpu.yaml --cron "0 3 * * *" --set trainer.grpo.max_num_steps=20', '  grpo schedule create every-6h configs/builtin-cpu.yaml --every 6h --paused'],
  options: {
    cron: { type: 'string', value: 'EXPR', help: 'cron expression, 5 fields, UTC (minute hour day-of-month month day-of-week), or @daily/@weekly/...' },
    every: { type: 'string', value: 'DURATION', help: 'fire every DURATION (30s, 10m, 6h, 1d, 1h30m)' },
    set: SET_OPTION,
    overlap: { type: 'string', value: 'POLICY', default: 'SKIP', help: 'when a fire finds the previous run still running: SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, TERMINATE_OTHER, ALLOW_ALL' },
    'catchup-window': { type: 'string', value: 'DURATION', default: DEFAULT_CATCHUP_WINDOW, help: 'after a server outage, fires missed by at most this long still run' },
    paused: { type: 'boolean', help: 'create it paused (grpo schedule unpause starts it)' },
    note: { type: 'string', value: 'TEXT', help: 'a note kept with the schedule state' },
    json: JSON_OPTION,
  },
  async run(p) {
    const scheduleName = name(this, p);
    const configPath = p.positionals[1];
    if (!configPath) throw new CliError(`missing <config>\nUsage: ${usageLine(this)}   (grpo ${this.name} --help)`, 2);
    const opts: CreateScheduleOptions = {
      name: scheduleName,
      configPath,
      set: list(p, 'set'),
      ...(str(p, 'cron') !== undefined ? { cron: str(p, 'cron') } : {}),
      ...(str(p, 'every') !== undefined ? { every: str(p, 'every') } : {}),
      overlap: str(p, 'overlap')!,
      catchupWindow: str(p, 'catchup-window')!,
      paused: flag(p, 'paused'),
      ...(str(p, 'note') ? { note: str(p, 'note') } : {}),
    };
    checkSchedule(opts);
    const loaded = await loadScheduleConfig(configPath, opts.set ?? []);
    const { client, connection, target } = await connectClient();
    try {
      const { handle, checked } = await createSchedule(client, { ...opts, loaded });
      await warnIfNoWorker(client, target.namespace, "the schedule's runs wait");
      const d = await handle.describe();
      const next = d.info.nextActionTimes.map((t) => t.toISOString());
      if (flag(p, 'json')) {
        say(JSON.stringify({ name: checked.name, spec: checked.specText, config: loaded.source, paused: d.state.paused, overlap: checked.overlap, nextFireTimes: next, workflowType: WORKFLOW_TYPE, taskQueue: TASK_QUEUE, namespace: target.namespace }, null, 2));
        return 0;
      }
      say(`Created schedule ${checked.name}${d.state.paused ? ' (paused)' : ''}: ${checked.specText}, ${loaded.source}; overlap ${checked.overlap}, pause on failure.`);
      say(`Next fire times: ${next.length ? next.slice(0, 3).join(', ') : '(none: this spec never fires; check --cron)'}`);
      say(`Each fire's run is ${checked.name}-<time>. See: npm run grpo -- schedule describe ${checked.name}`);
      return 0;
    } finally {
      await connection.close();
    }
  },
};

export const scheduleList: Command = {
  name: 'schedule list',
  brief: 'schedules of training runs',
  args: '',
  summary: 'The schedules that start training runs: spec, paused or not, next fire time, config.',
  options: { json: JSON_OPTION },
  async run(p) {
    const { client, connection } = await connectClient();
    try {
      const rows = [];
      for await (const s of client.schedule.list()) {
        if (s.action && s.action.workflowType !== WORKFLOW_TYPE) continue;
        const memo = s.memo;
        rows.push({
          name: s.scheduleId,
          spec: specText(memo, s.spec),
          paused: s.state.paused,
          config: typeof memo?.grpoConfig === 'string' ? memo.grpoConfig : null,
          nextFireTimes: s.info.nextActionTimes.map((t) => t.toISOString()),
          lastRun: s.info.recentActions.at(-1)?.action.workflow.workflowId ?? null,
        });
      }
      rows.sort((a, b) => a.name.localeCompare(b.name));
      if (flag(p, 'json')) say(JSON.stringify(rows, null, 2));
      else if (!rows.length) say('No schedules. Create one with: npm run grpo -- schedule create nightly configs/builtin-cpu.yaml --cron "0 3 * * *"');
      else for (const r of rows) say(`${r.name.padEnd(30)} ${(r.paused ? 'PAUSED' : 'active').padEnd(7)} ${r.spec.padEnd(28)} next ${r.nextFireTimes[0] ?? '-'}  ${r.config ?? ''}`);
      return 0;
    } finally {
      await connection.close();
    }
  },
};

export const scheduleDescribe: Command = {
  name: 'schedule describe',
  brief: "a schedule's spec, next fire times and recent runs",
  args: '<name> [--json]',
  summary: "The schedule's spec and policies, paused or not, its next fire times, its recent runs (workflow id, run id, outcome) and the fires skipped because a run was still running.",
  options: { json: JSON_OPTION },
  async run(p) {
    const n = name(this, p);
    return withSchedule(n, async (client, handle) => {
      const view = await scheduleView(client, await handle.describe());
      say(flag(p, 'json') ? JSON.stringify(view, null, 2) : renderSchedule(view));
      return 0;
    });
  },
};

export const schedulePause: Command = {
  name: 'schedule pause',
  brief: 'stop a schedule firing (running runs go on)',
  args: '<name> [--note TEXT] [--json]',
  summary: 'Pause a schedule: it stops firing until grpo schedule unpause. A run already started goes on.',
  options: { note: { type: 'string', value: 'TEXT', help: 'why (shown by grpo schedule describe)' }, json: JSON_OPTION },
  async run(p) {
    const n = name(this, p);
    return withSchedule(n, async (_c, handle) => {
      await handle.pause(str(p, 'note') ?? 'paused with grpo schedule pause');
      if (flag(p, 'json')) say(JSON.stringify({ schedule: n, paused: true }, null, 2));
      else say(`Paused schedule ${n}.`);
      return 0;
    });
  },
};

export const scheduleUnpause: Command = {
  name: 'schedule unpause',
  brief: 'resume a paused schedule',
  args: '<name> [--json]',
  summary: 'Unpause a schedule (also one paused because a run failed): it fires again at its next time.',
  options: { json: JSON_OPTION },
  async run(p) {
    const n = name(this, p);
    return withSchedule(n, async (_c, handle) => {
      await handle.unpause('unpaused with grpo schedule unpause');
      const next = (await handle.describe()).info.nextActionTimes[0];
      if (flag(p, 'json')) say(JSON.stringify({ schedule: n, paused: false, nextActionTime: next?.toISOString() ?? null }, null, 2));
      else say(`Unpaused schedule ${n}${next ? `; next fire ${next.toISOString()}` : ''}.`);
      return 0;
    });
  },
};

export const scheduleTrigger: Command = {
  name: 'schedule trigger',
  brief: 'fire a schedule now',
  args: '<name> [--json]',
  summary: "Start the schedule's run now (skipped, per the overlap policy, while its previous run is still running).",
  options: { json: JSON_OPTION },
  async run(p) {
    const n = name(this, p);
    return withSchedule(n, async (_c, handle) => {
      await handle.trigger();
      if (flag(p, 'json')) say(JSON.stringify({ schedule: n, triggered: true }, null, 2));
      else say(`Triggered schedule ${n}; its run shows in: npm run grpo -- schedule describe ${n}`);
      return 0;
    });
  },
};

export const scheduleDelete: Command = {
  name: 'schedule delete',
  brief: 'delete a schedule (runs already started go on)',
  args: '<name> [--json]',
  summary: 'Delete a schedule. Runs it already started go on (grpo cancel stops one).',
  options: { json: JSON_OPTION },
  async run(p) {
    const n = name(this, p);
    return withSchedule(n, async (_c, handle) => {
      await handle.delete();
      if (flag(p, 'json')) say(JSON.stringify({ schedule: n, deleted: true }, null, 2));
      else say(`Deleted schedule ${n}.`);
      return 0;
    });
  },
};

export const SCHEDULE_COMMANDS: Command[] = [scheduleCreate, scheduleList, scheduleDescribe, schedulePause, scheduleUnpause, scheduleTrigger, scheduleDelete];
