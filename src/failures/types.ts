/** The failure types and which of them a retry cannot fix. Deterministic code: the workflow imports it. */

export const FAILURE_TYPES = [
  'OutOfMemory',
  'RayFailure',
  'RateLimited',
  'InvalidConfig',
  'InvalidData',
  'ModelLoad',
  'StorageError',
  'Killed',
  'Hung',
  'WorkerLost',
  'Unknown',
] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** Types that a retry cannot fix: the run fails at once with the reason. */
export const FATAL_TYPES: readonly string[] = ['InvalidConfig', 'InvalidData', 'ModelLoad', 'InvalidInput', 'BackendUnavailable'];
