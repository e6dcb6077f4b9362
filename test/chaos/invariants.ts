/**
 * What must hold after every chaos scenario, checked from the outside (files on disk, /proc, the
 * workflow's summary), not from the pipeline's own bookkeeping.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LedgerEntry, Summary } from '../../src/common/types.js';
import { processesMentioning, readJsonLines, sleep, type TrainerMonitor } from './harness.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Outcome {
  summary: Summary;
  runDir: string;
  savePeriod: number;
  keepTopK: number;
  totalSteps: number;
  monitor: TrainerMonitor;
  /** Ledger types that must appear (each at least once, recovered). */
  expectTypes: string[];
  /** Ledger types that may also appear (e.g. a lost attempt while the server was down). */
  allowTypes: string[];
  /** Extra scenario-specific checks. */
  extra?: Check[];
}

/** step → validation accuracy, from metrics.jsonl (a resumed run re-validates: the last line wins). */
export function validationByStep(logDir: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of readJsonLines(join(logDir, 'metrics.jsonl')))
    if (r.kind === 'validation' && typeof r.step === 'number' && typeof r['validation/accuracy'] === 'number') m.set(r.step, r['validation/accuracy'] as number);
  return m;
}

/** The documented rule, computed independently: top k by accuracy (ties: newer first) plus the newest. */
export function expectedRetained(saved: number[], acc: Map<number, number>, k: number): { keep: number[]; best: number } {
  const ranked = [...saved].sort((a, b) => (acc.get(b) ?? -1) - (acc.get(a) ?? -1) || b - a);
  const keep = new Set(ranked.slice(0, k));
  keep.add(Math.max(...saved));
  return { keep: [...keep].sort((a, b) => a - b), best: ranked[0]! };
}

function stepDirs(checkpointDir: string): number[] {
  if (!existsSync(checkpointDir)) return [];
  return readdirSync(checkpointDir)
    .map((n) => /^step_(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m && existsSync(join(checkpointDir, m[0], 'training_info.json')))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

const recovered = (e: LedgerEntry) => !e.action.startsWith('gave up');

export async function checkInvariants(o: Outcome): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const s = o.summary;
  const ckptDir = join(o.runDir, 'checkpoints');
  const logDir = join(o.runDir, 'logs');

  add('run completed', s.state === 'completed' && s.steps.completed === o.totalSteps, `state ${s.state}, steps ${s.steps.completed}/${s.steps.total}`);

  const saved: number[] = [];
  for (let st = o.savePeriod; st <= o.totalSteps; st += o.savePeriod) saved.push(st);
  if (saved.at(-1) !== o.totalSteps) saved.push(o.totalSteps);
  const acc = validationByStep(logDir);
  const want = expectedRetained(saved, acc, o.keepTopK);
  const onDisk = stepDirs(ckptDir);
  add('retained = top-k by val:accuracy + newest', JSON.stringify(onDisk) === JSON.stringify(want.keep), `on disk ${JSON.stringify(onDisk)}, expected ${JSON.stringify(want.keep)} (accuracy ${JSON.stringify(Object.fromEntries(acc))})`);
  const tmpLeft = existsSync(ckptDir) ? readdirSync(ckptDir).filter((n) => n.startsWith('tmp_step_')) : [];
  add('no incomplete checkpoint left', tmpLeft.length === 0, tmpLeft.join(', ') || 'none');
  add('best checkpoint survived', s.best?.step === want.best && onDisk.includes(want.best), `summary best step_${s.best?.step}, expected step_${want.best}`);

  const lost = s.ledger.map((e) => e.stepsLost ?? 0);
  add('steps lost <= save_period per failure', lost.every((l) => l <= o.savePeriod), `steps lost ${JSON.stringify(lost)} (save_period ${o.savePeriod})`);

  add('never two trainers on one checkpoint dir', o.monitor.maxConcurrent <= 1, `max concurrent ${o.monitor.maxConcurrent} over ${o.monitor.samples} samples, trainer pids ${[...o.monitor.seenPids].join(',')}`);

  const rayInfo = ['ray.stopped.json', 'ray.json'].map((f) => join(o.runDir, f)).find(existsSync);
  const needles = [o.runDir, ...(rayInfo ? [(JSON.parse(readFileSync(rayInfo, 'utf8')) as { tempDir: string }).tempDir] : [])];
  let left = processesMentioning(needles);
  for (let i = 0; i < 40 && left.length; i++) {
    await sleep(500);
    left = processesMentioning(needles);
  }
  add('no process of the run left', left.length === 0, left.map((p) => `${p.pid} ${p.cmd.slice(0, 80)}`).join('; ') || 'none');

  const types = s.ledger.map((e) => e.type);
  const missing = o.expectTypes.filter((t) => !s.ledger.some((e) => e.type === t && recovered(e)));
  const unexpected = types.filter((t) => !o.expectTypes.includes(t) && !o.allowTypes.includes(t));
  add('ledger matches the fault', missing.length === 0 && unexpected.length === 0 && s.ledger.every(recovered), `ledger ${JSON.stringify(types)}; expected ${JSON.stringify(o.expectTypes)}${o.allowTypes.length ? ` (allowed ${JSON.stringify(o.allowTypes)})` : ''}`);
  checks.push(...(o.extra ?? []));
  return checks;
}
