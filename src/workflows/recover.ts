/**
 * The workflow's recovery loop: run a stage's activity; on a classified failure apply that type's
 * policy (within its budget): change the config, restart Ray, wait, go offline... then try again.
 * Every failure lands in the ledger with what was done about it. Deterministic code only.
 */
import { isCancellation, log, sleep } from '@temporalio/workflow';
import { traitsOf } from '../backends/traits.js';
import type { EnvInfo, LedgerEntry, RayInfo, ResolvedRun, StageName } from '../common/types.js';
import { DEFAULT_RECOVERY, decide, type RecoverySettings } from '../failures/policy.js';
import { ledgerEntry, oomKnobs, seenFailure } from './recovery.js';
import type { StatusTracker } from './tracker.js';
import type { LiveRun } from './carry.js';

export type RestartRay = (input: { run: ResolvedRun; env: EnvInfo; forceCleanup: boolean }) => Promise<RayInfo>;

export function makeRecover(t: StatusTracker, live: LiveRun, restartRay: RestartRay) {
  const cfg = live.run.config;
  const traits = traitsOf(cfg.backend);
  // Runs started before the recovery section existed carry no such key: their history must
  // still replay, with the defaults they would get today.
  const recovery = (cfg.recovery ?? DEFAULT_RECOVERY) as RecoverySettings;
  const status = t.status;
  return async function recover<T>(name: StageName, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const r = await fn();
        t.closeRecovered(name);
        return r;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const f = seenFailure(err);
        if (!f) throw err;
        const d = f.details;
        const ray = live.ray;
        const action = decide({
          type: f.type,
          stage: name,
          used: t.used[f.type] ?? 0,
          settings: recovery,
          retryAfterSeconds: d?.retryAfterSeconds ?? null,
          oom: oomKnobs(cfg, live.run.trainerOverrides ?? []),
          modelCached: live.modelCached || (d?.modelCached ?? false),
          rayOwner: ray ? (ray.external ? 'user' : 'pipeline') : traits.ownRayCluster ? 'trainer' : 'pipeline',
          random: Math.random(),
        });
        const entry: LedgerEntry = ledgerEntry({
          stage: name, attempt: status.attempts[name] ?? 1, type: f.type, rule: d?.rule ?? (f.type === 'WorkerLost' ? 'heartbeat-timeout' : 'activity-error'),
          action: action.kind === 'fail' ? `gave up: ${action.reason}` : action.reason, configChanges: action.configChanges,
          failedAtMs: d?.failedAtMs ?? Date.now(), stepAtFailure: d?.step ?? null, checkpointStep: d?.checkpointStep ?? null, workSinceMs: d?.workSinceMs ?? null,
          message: f.message,
        });
        status.ledger.push(entry);
        t.touch();
        if (action.kind === 'fail') {
          log.error('recovery gave up', { stage: name, type: f.type, reason: action.reason });
          throw err;
        }
        t.used[f.type] = (t.used[f.type] ?? 0) + 1;
        log.warn('recovering', { stage: name, type: f.type, action: action.reason, waitSeconds: action.waitSeconds });
        const s = status.stages.find((x) => x.name === name)!;
        s.detail = `recovering from ${f.type}: ${action.reason}`;
        if (action.configChanges.length) {
          live.run = { ...live.run, trainerOverrides: [...(live.run.trainerOverrides ?? []), ...action.configChanges] };
          status.configChanges.push(...action.configChanges);
        }
        if (action.goOffline) live.run = { ...live.run, hubOffline: true };
        if (action.stopForcedVenvRebuild && live.env && traits.forcedVenvRebuild) live.env = { ...live.env, nrlForceRebuildVenvs: false };
        if (action.waitSeconds > 0) await sleep(action.waitSeconds * 1000);
        if (action.restartRay && live.ray && live.env) live.ray = await restartRay({ run: live.run, env: live.env, forceCleanup: action.forceCleanup });
      }
    }
  };
}
