/**
 * Checkpoint bookkeeping after each segment: read what the trainer left (it owns retention, as
 * NeMo RL's checkpoint manager does), report it, pick the best, and log when retention broke its promise.
 */
import { readCheckpointBook } from '../checkpoints/reader.js';
import { log } from '../common/activity-context.js';
import type { CheckpointBook, ResolvedRun } from '../common/types.js';

export async function bookkeepCheckpoints(input: { run: ResolvedRun }): Promise<CheckpointBook> {
  const c = input.run.config.trainer.checkpointing;
  const book = readCheckpointBook(input.run.paths.checkpointDir, { metricName: c.metric_name, higherIsBetter: c.higher_is_better, keepTopK: c.keep_top_k });
  for (const v of book.violations ?? []) log('warn', v, { checkpointDir: input.run.paths.checkpointDir });
  return book;
}
