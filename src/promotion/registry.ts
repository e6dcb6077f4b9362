/**
 * The promoted-model registry of a state dir (plain files, no Temporal): one directory per line,
 *
 *   <state>/models/<line>/
 *     exports/<runId>-step<N>/   Hugging Face model dirs of promoted (or about to be promoted) checkpoints
 *     current.json               the pointer: which export is the line's model now
 *     history.jsonl              one record per decision (promoted, rejected) and per rollback
 *     .lock                      held while a promotion or rollback switches the pointer
 *
 * The pointer is switched atomically (temp file, fsync, rename, fsync of the dir): a process killed
 * at any moment leaves either the old pointer or the new one. History lines are appended and fsynced
 * after the switch; a torn last line is skipped when read. Exports are never deleted here, so a
 * rollback always finds the previous model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { PromotionDecision } from '../common/types.js';
import { HOST, isAlive, procStartTime } from '../process/proc.js';

/** The line's model now (current.json). */
export interface PromotedPointer {
  line: string;
  runId: string;
  step: number;
  /** The exported Hugging Face model dir. */
  modelDir: string;
  accuracy: number;
  numTasks: number;
  bfcl: number | null;
  /** The base model the run trained (model.source, or hf:<name>[@<revision>]): a run of another base does not start from it. */
  baseModel: string;
  promotedAt: string;
}

/** One line of history.jsonl: a promotion decision (the decision's fields) or a rollback. */
export type HistoryRecord =
  | (PromotionDecision & { kind: 'decision'; decision: 'promoted' | 'rejected'; pointer?: PromotedPointer | null })
  | { kind: 'rollback'; decision: 'rollback'; line: string; time: string; runId: string; step: number; from: { runId: string; step: number }; reason: string; modelDir: string; pointer: PromotedPointer };

/** The base model a config trains (what a promoted model of another base must not be mistaken for). */
export function baseModelName(model: { source: string; name?: string | null; revision?: string | null }): string {
  return model.source === 'hf' ? `hf:${model.name ?? ''}${model.revision ? `@${model.revision}` : ''}` : model.source;
}

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

export const LINE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function lineDir(state: string, line: string): string {
  if (!LINE_PATTERN.test(line)) throw new RegistryError(`promotion line: expected a file name (letters, digits, '.', '_' or '-'), got ${JSON.stringify(line)}`);
  return join(state, 'models', line);
}

export const currentPath = (state: string, line: string) => join(lineDir(state, line), 'current.json');
export const historyPath = (state: string, line: string) => join(lineDir(state, line), 'history.jsonl');
export const exportDirFor = (state: string, line: string, runId: string, step: number) => join(lineDir(state, line), 'exports', `${runId}-step${step}`);

/** The line's current model; null when nothing was promoted (or the pointer is unreadable). */
export function readCurrent(state: string, line: string): PromotedPointer | null {
  try {
    const p = JSON.parse(readFileSync(currentPath(state, line), 'utf8')) as PromotedPointer;
    return typeof p.modelDir === 'string' && typeof p.runId === 'string' ? p : null;
  } catch {
    return null;
  }
}

/** Every record, oldest first (a torn last line from a crash is skipped). */
export function readHistory(state: string, line: string): HistoryRecord[] {
  const path = historyPath(state, line);
  if (!existsSync(path)) return [];
  const out: HistoryRecord[] = [];
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l) as HistoryRecord);
    } catch {
      /* torn line */
    }
  }
  return out;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Make `pointer` the line's current model: temp file, fsync, rename over current.json, fsync the dir. */
export async function switchPointer(state: string, pointer: PromotedPointer): Promise<void> {
  const dir = lineDir(state, pointer.line);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `current.json.tmp-${process.pid}`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(pointer, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, currentPath(state, pointer.line));
  await fsyncDir(dir);
}

export async function appendHistory(state: string, line: string, record: HistoryRecord): Promise<void> {
  await mkdir(lineDir(state, line), { recursive: true });
  const path = historyPath(state, line);
  // After a torn last line (a crash mid-append) start on a new line, so this record stays whole.
  const size = await stat(path).then((s) => s.size, () => 0);
  let torn = false;
  if (size > 0) {
    const fh = await open(path, 'r');
    try {
      const { buffer } = await fh.read(Buffer.alloc(1), 0, 1, size - 1);
      torn = buffer[0] !== 0x0a;
    } finally {
      await fh.close();
    }
  }
  await appendFile(path, (torn ? '\n' : '') + JSON.stringify(record) + '\n');
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function lastIndex<T>(xs: T[], pred: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (pred(xs[i]!)) return i;
  return -1;
}

const same = (a: { runId: string; step: number } | null | undefined, b: { runId: string; step: number } | null | undefined) => !!a && !!b && a.runId === b.runId && a.step === b.step;

/**
 * The promoted models in order, newest last: promotions push, rollbacks pop. A pointer that the
 * history does not know yet (killed after the switch, before the append) counts as on top.
 */
export function promotedStack(state: string, line: string): PromotedPointer[] {
  const stack: PromotedPointer[] = [];
  for (const r of readHistory(state, line)) {
    if (r.kind === 'decision' && r.decision === 'promoted' && r.pointer) stack.push(r.pointer);
    else if (r.kind === 'rollback') {
      const i = lastIndex(stack, (p) => same(p, r.pointer));
      if (i >= 0) stack.splice(i + 1);
    }
  }
  const current = readCurrent(state, line);
  if (current && !same(stack.at(-1), current)) {
    const i = lastIndex(stack, (p) => same(p, current));
    if (i >= 0) stack.splice(i + 1);
    else stack.push(current);
  }
  return stack;
}

interface LockOwner {
  pid: number;
  pidStart: string | null;
  host: string;
  since: string;
}

/**
 * Run `fn` holding the line's lock (an O_EXCL file naming its owner). A lock whose owner died on
 * this host (pid gone or reused), or one without a readable owner older than a minute, is stale
 * and taken over; otherwise wait up to `timeoutMs`.
 */
export async function withLineLock<T>(state: string, line: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const dir = lineDir(state, line);
  await mkdir(dir, { recursive: true });
  const path = join(dir, '.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      const me: LockOwner = { pid: process.pid, pidStart: procStartTime(process.pid), host: HOST, since: new Date().toISOString() };
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = await readFile(path, 'utf8')
      .then((t) => JSON.parse(t) as LockOwner)
      .catch(() => null);
    const ageMs = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
    const dead = owner ? owner.host === HOST && (!isAlive(owner.pid) || (!!owner.pidStart && procStartTime(owner.pid) !== owner.pidStart)) : ageMs > 60_000;
    if (dead) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new RegistryError(`promotion line ${line} is locked by pid ${owner?.pid ?? '?'} on ${owner?.host ?? '?'} since ${owner?.since ?? '?'} (${path})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}

/** Make the previous promoted model current again; a 'rollback' record says from what to what. */
export async function rollback(state: string, line: string, now = new Date()): Promise<Extract<HistoryRecord, { kind: 'rollback' }>> {
  return withLineLock(state, line, async () => {
    const stack = promotedStack(state, line);
    const current = stack.at(-1);
    if (!current) throw new RegistryError(`nothing to roll back to: line ${line} has no promoted model (${lineDir(state, line)})`);
    const previous = stack.at(-2);
    if (!previous) throw new RegistryError(`nothing to roll back to: ${current.runId} step ${current.step} is the first promoted model of line ${line}`);
    if (!existsSync(join(previous.modelDir, 'config.json'))) throw new RegistryError(`cannot roll back to ${previous.runId} step ${previous.step}: its export ${previous.modelDir} is missing`);
    const record: Extract<HistoryRecord, { kind: 'rollback' }> = {
      kind: 'rollback',
      decision: 'rollback',
      line,
      time: now.toISOString(),
      runId: previous.runId,
      step: previous.step,
      from: { runId: current.runId, step: current.step },
      reason: `rolled back from ${current.runId} step ${current.step} to ${previous.runId} step ${previous.step} (promoted ${previous.promotedAt})`,
      modelDir: previous.modelDir,
      pointer: previous,
    };
    await switchPointer(state, previous);
    await appendHistory(state, line, record);
    return record;
  });
}
