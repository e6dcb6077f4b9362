/** Ending the Ray head a run started: its process session, its temp dir and its token. */
import { existsSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RayInfo } from '../common/types.js';
import { groupAlive, killGroup, procCmdline } from '../process/proc.js';
import { rayTokenPath, removeRayToken } from './head.js';

/** Where the run's head is recorded while it runs (atomically written by the Ray stage). */
export const rayInfoPath = (runDir: string) => join(runDir, 'ray.json');

/** Stop the Ray head this run started (verified by its temp dir on the command line) and remove its token. */
export async function stopRunRay(runDir: string): Promise<{ stopped: boolean }> {
  await removeRayToken(rayTokenPath(runDir));
  const infoPath = rayInfoPath(runDir);
  if (!existsSync(infoPath)) return { stopped: false };
  const info = JSON.parse(await readFile(infoPath, 'utf8')) as RayInfo;
  let stopped = false;
  if (groupAlive(info.pid) && (procCmdline(info.pid).includes(info.tempDir) || !procCmdline(info.pid))) {
    await killGroup(info.pid, 8000);
    stopped = true;
  }
  if (info.tempDir) await rm(info.tempDir, { recursive: true, force: true });
  await rename(infoPath, join(runDir, 'ray.stopped.json')).catch(() => undefined);
  return { stopped };
}
