/**
 * The built-in trainer's state as it reports it: `<log_dir>/trainer_events.jsonl`, one JSON object
 * per line (contracts/trainer-events.schema.json). The pipeline reads these instead of log text.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadContract } from '../common/contracts.js';

export type TrainerEvent =
  | { event: 'running'; step: number; time: number; pid: number }
  | { event: 'checkpoint_saved'; step: number; path: string; time: number; removed: number[] };

const EVENTS_FILE = loadContract<{ 'x-file': string }>('trainer-events.schema.json')['x-file'];

export const trainerEventsFile = (logDir: string) => join(logDir, EVENTS_FILE);

/** One line, or null when it is not an event of the contract (a line cut short by a crash, say). */
export function parseTrainerEvent(line: string): TrainerEvent | null {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!o || typeof o !== 'object' || !Number.isInteger(o.step) || typeof o.time !== 'number') return null;
  if (o.event === 'running' && Number.isInteger(o.pid)) return o as TrainerEvent;
  if (o.event === 'checkpoint_saved' && typeof o.path === 'string' && Array.isArray(o.removed)) return o as TrainerEvent;
  return null;
}

export function readTrainerEvents(logDir: string): TrainerEvent[] {
  const f = trainerEventsFile(logDir);
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .map(parseTrainerEvent)
    .filter((e): e is TrainerEvent => e !== null);
}
