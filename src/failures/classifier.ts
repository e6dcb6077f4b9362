/**
 * The one failure classifier: turns a failed attempt (the trainer's failure.json, its exit code or
 * signal, the tail of its log) into a failure type that picks a recovery policy.
 *
 * Table-driven: RULES is read top to bottom and the first matching row wins, so specific evidence
 * (a typed failure.json, a kernel OOM kill) comes before log-text guesses, and log texts come
 * before the catch-all. Every row names where its text comes from. Pure code (no Node built-ins):
 * the workflow imports the types.
 */

export const FAILURE_TYPES = [
  'OutOfMemory',
  'RayFailure',
  'RateLimited',
  'InvalidConfig',
  'InvalidData',
  'ModelLoad',
  'StorageError',
  'Killed',
  'WorkerLost',
  'Unknown',
] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** Types that a retry cannot fix: the run fails at once with the reason. */
export const FATAL_TYPES: readonly string[] = ['InvalidConfig', 'InvalidData', 'ModelLoad', 'InvalidInput', 'BackendUnavailable'];

export interface FailureEvidence {
  /** The trainer's failure.json, when it wrote one. */
  report?: { type: string; message: string; step: number | null; retryAfterSeconds?: number | null } | null;
  exitCode: number | null;
  signal: string | null;
  /** Tail of the process's combined stdout/stderr. */
  logTail: string;
  /** The kernel's OOM killer ended a process of ours while this attempt ran (cgroup memory.events). */
  oomKillObserved?: boolean;
}

export interface Classification {
  type: FailureType;
  /** Id of the table row that matched. */
  rule: string;
  /** Seconds to wait before retrying, when the failure said (HTTP Retry-After). */
  retryAfterSeconds: number | null;
}

export interface ClassifierRule {
  id: string;
  type: FailureType;
  /** Where the matched text or signal comes from. */
  source: string;
  match: (e: FailureEvidence) => boolean;
}

const REPORTED_TYPES = new Set<string>(FAILURE_TYPES.filter((t) => t !== 'Unknown'));

const killedBySigkill = (e: FailureEvidence) => e.signal === 'SIGKILL' || e.exitCode === 137;
/** Text the failure left anywhere: the trainer's message and the log tail. */
const text = (e: FailureEvidence) => `${e.report?.message ?? ''}\n${e.logTail}`;
const has = (needle: string | RegExp) => (e: FailureEvidence) => (typeof needle === 'string' ? text(e).includes(needle) : needle.test(text(e)));

export const RULES: ClassifierRule[] = [
  {
    id: 'report-type',
    type: 'Unknown', // replaced by the report's own type in classifyFailure
    source: "the trainer's own failure.json (grpo_trainer/failures.py classifies the exception chain)",
    match: (e) => !!e.report && REPORTED_TYPES.has(e.report.type),
  },
  {
    id: 'kernel-oom-kill',
    type: 'OutOfMemory',
    source: 'exit 137 / SIGKILL while the cgroup memory.events oom_kill counter rose (Linux OOM killer)',
    match: (e) => killedBySigkill(e) && !!e.oomKillObserved,
  },
  {
    id: 'torch-oom-error',
    type: 'OutOfMemory',
    source: 'PyTorch: torch.OutOfMemoryError (torch.cuda.OutOfMemoryError), raised by the CUDA caching allocator',
    match: has(/\b(torch\.)?(cuda\.)?OutOfMemoryError\b/),
  },
  {
    id: 'cuda-caching-allocator',
    type: 'OutOfMemory',
    source: 'PyTorch c10/cuda/CUDACachingAllocator.cpp: "CUDA out of memory. Tried to allocate ..."',
    match: has('CUDA out of memory'),
  },
  {
    id: 'cuda-runtime-oom',
    type: 'OutOfMemory',
    source: 'CUDA runtime cudaErrorMemoryAllocation via C10_CUDA_CHECK: "CUDA error: out of memory" (NVIDIA-NeMo/RL#2702)',
    match: has('CUDA error: out of memory'),
  },
  {
    id: 'vllm-kv-cache',
    type: 'OutOfMemory',
    source: 'vLLM v1 kv_cache_utils.py check_enough_kv_cache_memory: "No available memory for the cache blocks" (vllm#2248, #10439)',
    match: has('No available memory for the cache blocks'),
  },
  {
    id: 'torch-cpu-allocator',
    type: 'OutOfMemory',
    source: 'PyTorch c10/core/impl/alloc_cpu.cpp: "DefaultCPUAllocator: can\'t allocate memory"',
    match: has("DefaultCPUAllocator: can't allocate memory"),
  },
  {
    id: 'python-memory-error',
    type: 'OutOfMemory',
    source: 'CPython: MemoryError when malloc fails (e.g. under an address-space limit)',
    match: has(/(^|\n|\s)MemoryError\b/),
  },
  {
    id: 'http-429',
    type: 'RateLimited',
    source: 'HTTP 429: huggingface_hub/requests "429 Client Error: Too Many Requests for url" (transformers#34841), pip/uv "429 Too Many Requests"',
    match: has(/\b429\b[^\n]{0,40}Too Many Requests|Too Many Requests[^\n]{0,40}\b429\b|status code:? 429\b|HTTP error 429\b/i),
  },
  {
    id: 'ray-actor-died',
    type: 'RayFailure',
    source: 'Ray: ray.exceptions.ActorDiedError "The actor died unexpectedly before finishing this task" (OpenRLHF#187, verl#383)',
    match: has(/ActorDiedError|RayActorError/),
  },
  {
    id: 'ray-system-error',
    type: 'RayFailure',
    source: 'Ray: ray.exceptions.RaySystemError "System error: ..." (verl#2360)',
    match: has('RaySystemError'),
  },
  {
    id: 'ray-worker-died',
    type: 'RayFailure',
    source: 'Ray raylet: "A worker died or was killed while executing a task by an unexpected system error ... Worker exit type: SYSTEM_ERROR" (NVIDIA-NeMo/RL#2937)',
    match: has(/worker died or was killed[\s\S]{0,400}SYSTEM_ERROR|Worker exit type: SYSTEM_ERROR/),
  },
  {
    id: 'ray-gcs-raylet-lost',
    type: 'RayFailure',
    source: 'Ray: GCS or raylet lost ("Failed to connect to GCS", "GCS has been unavailable", "raylet ... died", "node ... marked dead")',
    match: has(/Failed to connect to GCS|GCS (server )?(has been )?unavailable|Lost connection to (the )?GCS|raylet[^\n]{0,80}(died|has been killed)|node[^\n]{0,80}(has been )?marked (as )?dead/i),
  },
  {
    id: 'storage-full-or-too-large',
    type: 'StorageError',
    source: 'OS write errors: ENOSPC "No space left on device", EFBIG "File too large", EDQUOT "Disk quota exceeded"',
    match: has(/No space left on device|File too large|Disk quota exceeded|\[Errno (28|27|122)\]/),
  },
  {
    id: 'exit-2-usage',
    type: 'InvalidConfig',
    source: "the trainer's CLI: exit code 2 means invalid config or usage (grpo_trainer/cli.py)",
    match: (e) => e.exitCode === 2,
  },
  {
    id: 'sigkill-no-oom-evidence',
    type: 'Killed',
    source: 'exit 137 / SIGKILL without an OOM-killer record: killed by an operator, a scheduler or a crash handler',
    match: killedBySigkill,
  },
  {
    id: 'catch-all',
    type: 'Unknown',
    source: 'anything else: retried with backoff within its own budget',
    match: () => true,
  },
];

/** Seconds from "Retry-After: 30" / "retry_after=30" in the failure's text (null when absent). */
export function parseRetryAfter(s: string): number | null {
  const m = /retry[-_ ]after["']?\s*[:=]?\s*"?([\d.]+)/i.exec(s);
  if (!m) return null;
  const v = Number(m[1]);
  return Number.isFinite(v) && v >= 0 ? v : null;
}

export function classifyFailure(e: FailureEvidence): Classification {
  for (const rule of RULES) {
    if (!rule.match(e)) continue;
    const type = rule.id === 'report-type' ? (e.report!.type as FailureType) : rule.type;
    const retryAfterSeconds = type === 'RateLimited' ? (e.report?.retryAfterSeconds ?? parseRetryAfter(text(e))) : null;
    return { type, rule: rule.id, retryAfterSeconds };
  }
  /* c8 ignore next: the catch-all always matches */
  return { type: 'Unknown', rule: 'catch-all', retryAfterSeconds: null };
}
