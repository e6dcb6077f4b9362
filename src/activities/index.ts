/**
 * The activities of the `trainingRun` workflow, one stage per file; the worker registers exactly
 * these. Each is idempotent: re-running it after a crash or a retry converges on the same result
 * (fingerprints, marker files, newest-checkpoint resume).
 */
export { resolveRun } from './resolve.js';
export { registerRunAttributes } from './search.js';
export { prepareEnvironment, checkTrainerConfig } from './environment.js';
export { prepareData } from './data.js';
export { fetchModel } from './model.js';
export { checkRunIdentity } from './identity.js';
export { startRay, restartRay } from './ray.js';
export { evaluate } from './evaluate.js';
export { warmStart } from './warm-start.js';
export { trainSegment } from './train.js';
export { bookkeepCheckpoints } from './checkpoints.js';
export { bfclEvaluate } from './bfcl.js';
export { promoteModel, promotedModel } from './promote.js';
export { writeSummary, writeReport } from './summary.js';
export { cleanupRun } from './cleanup.js';
