/** The cleanup stage: end everything this run started (an orphaned trainer group, the Ray head and its token), and nothing else. */
import type { ResolvedRun } from '../common/types.js';
import { stopOrphanTrainer } from '../process/lock.js';
import { stopRunRay } from '../ray/stop.js';

export async function cleanupRun(input: { run: ResolvedRun }): Promise<{ rayStopped: boolean; trainerStopped: boolean }> {
  const trainerStopped = await stopOrphanTrainer(input.run.paths.checkpointDir).catch(() => false);
  const { stopped } = await stopRunRay(input.run.paths.runDir);
  return { rayStopped: stopped, trainerStopped };
}
