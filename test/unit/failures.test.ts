/** The failure classifier (one test per table row) and the recovery policies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RULES, classifyFailure, parseRetryAfter, type FailureEvidence } from '../../src/failures/classifier.js';
import { DEFAULT_RECOVERY, backoffSeconds, decide, oomChanges, type OomKnobs } from '../../src/failures/policy.js';

const ev = (p: Partial<FailureEvidence>): FailureEvidence => ({ exitCode: 1, signal: null, logTail: '', ...p });

/** One real-looking sample per classifier row; the test below fails if a row has none. */
const SAMPLES: Record<string, { e: FailureEvidence; type: string }> = {
  'report-type': { e: ev({ report: { type: 'RayFailure', message: 'RayFailureError: cannot join', step: 3 } }), type: 'RayFailure' },
  'kernel-oom-kill': { e: ev({ exitCode: null, signal: 'SIGKILL', oomKillObserved: true }), type: 'OutOfMemory' },
  'torch-oom-error': {
    e: ev({ logTail: 'ray.exceptions.RayTaskError(OutOfMemoryError): ray::DTensorPolicyWorkerV2.get_logprobs()\ntorch.OutOfMemoryError: oops' }),
    type: 'OutOfMemory',
  },
  'cuda-caching-allocator': { e: ev({ logTail: 'RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)' }), type: 'OutOfMemory' },
  'cuda-runtime-oom': { e: ev({ logTail: '(MegatronPolicyWorker pid=123) torch.AcceleratorError: CUDA error: out of memory' }), type: 'OutOfMemory' },
  'vllm-kv-cache': { e: ev({ logTail: 'ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.' }), type: 'OutOfMemory' },
  'torch-cpu-allocator': { e: ev({ logTail: "RuntimeError: [enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes." }), type: 'OutOfMemory' },
  'python-memory-error': { e: ev({ logTail: 'Traceback (most recent call last):\n  File "x.py", line 1\nMemoryError' }), type: 'OutOfMemory' },
  'http-429': {
    e: ev({ logTail: 'requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://huggingface.co/x/resolve/main/config.json\nRetry-After: 17' }),
    type: 'RateLimited',
  },
  'ray-actor-died': { e: ev({ logTail: 'ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.' }), type: 'RayFailure' },
  'ray-system-error': { e: ev({ logTail: 'ray.exceptions.RaySystemError: System error: Failed to unpickle serialized exception' }), type: 'RayFailure' },
  'ray-worker-died': {
    e: ev({ logTail: '(raylet) A worker died or was killed while executing a task by an unexpected system error. To troubleshoot ... Worker exit type: SYSTEM_ERROR Worker exit detail: ...' }),
    type: 'RayFailure',
  },
  'ray-gcs-raylet-lost': { e: ev({ logTail: 'RuntimeError: Failed to connect to GCS within 60 seconds. GCS may have been killed.' }), type: 'RayFailure' },
  'storage-full-or-too-large': { e: ev({ logTail: "OSError: [Errno 27] File too large: 'tmp_step_6/policy/weights/model.safetensors'" }), type: 'StorageError' },
  'torch-save-short-write': { e: ev({ logTail: 'FAILED (Unknown): RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 12588352 vs 12588240' }), type: 'StorageError' },
  'hydra-overrides-error': {
    e: ev({ logTail: "Traceback (most recent call last):\nnemo_rl.utils.config.OverridesError: Failed to parse Hydra overrides: Could not override 'grpo.stop_after_step'.\nTo append to your config use +grpo.stop_after_step=6" }),
    type: 'InvalidConfig',
  },
  'omegaconf-missing-value': { e: ev({ logTail: 'omegaconf.errors.MissingMandatoryValue: Missing mandatory value: policy.generation.vllm_cfg.tool_parser_plugin' }), type: 'InvalidConfig' },
  'config-key-missing': { e: ev({ logTail: 'Traceback (most recent call last):\n  File "examples/nemo_gym/run_grpo_nemo_gym.py", line 186, in main\nKeyError: \'checkpoint_dir\'\n' }), type: 'InvalidConfig' },
  'nemo-rl-max-val-samples': { e: ev({ logTail: 'ValueError: A non-null `grpo.max_val_samples` parameter is not supported.' }), type: 'InvalidConfig' },
  'wandb-no-api-key': { e: ev({ logTail: 'wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])\nwandb.errors.errors.UsageError: api_key not configured (no-tty).' }), type: 'InvalidConfig' },
  'exit-2-usage': { e: ev({ exitCode: 2, logTail: 'usage: python -m grpo_trainer ...' }), type: 'InvalidConfig' },
  'sigkill-no-oom-evidence': { e: ev({ exitCode: null, signal: 'SIGKILL', oomKillObserved: false }), type: 'Killed' },
  'catch-all': { e: ev({ exitCode: 1, logTail: 'ZeroDivisionError: division by zero' }), type: 'Unknown' },
};

for (const rule of RULES) {
  test(`classifier row ${rule.id} (${rule.source.slice(0, 60)}...)`, () => {
    const sample = SAMPLES[rule.id];
    assert.ok(sample, `row ${rule.id} has no test sample`);
    const c = classifyFailure(sample.e);
    assert.equal(c.rule, rule.id);
    assert.equal(c.type, sample.type);
  });
}

test('every row cites where its text or signal comes from', () => {
  for (const r of RULES) assert.ok(r.source.length > 20, r.id);
  assert.equal(new Set(RULES.map((r) => r.id)).size, RULES.length);
});

test("a typed failure.json wins over log texts; an 'Unknown' one falls through to them", () => {
  const typed = classifyFailure(ev({ report: { type: 'InvalidData', message: 'x', step: null }, logTail: 'CUDA out of memory' }));
  assert.equal(typed.type, 'InvalidData');
  const unknown = classifyFailure(ev({ report: { type: 'Unknown', message: 'RuntimeError: CUDA out of memory.', step: 2 } }));
  assert.deepEqual([unknown.type, unknown.rule], ['OutOfMemory', 'cuda-caching-allocator']);
});

test('Retry-After comes from the report first, then from the text', () => {
  assert.equal(classifyFailure(ev({ report: { type: 'RateLimited', message: '429', step: null, retryAfterSeconds: 42 } })).retryAfterSeconds, 42);
  assert.equal(classifyFailure(SAMPLES['http-429']!.e).retryAfterSeconds, 17);
  assert.equal(parseRetryAfter('no header here'), null);
  assert.equal(parseRetryAfter('"retry_after": 3.5'), 3.5);
});

test('an operator kill -9 is not an OOM unless the OOM killer acted', () => {
  assert.equal(classifyFailure(ev({ exitCode: 137, signal: null })).type, 'Killed');
  assert.equal(classifyFailure(ev({ exitCode: 137, signal: null, oomKillObserved: true })).type, 'OutOfMemory');
});

// ---------------------------------------------------------------------------------------------
// Policies

const builtinKnobs: OomKnobs = { microBatch: 8, logprobBatch: null, generationBatch: 8, generationBatchKey: 'grpo.val_batch_size', gpuMemoryUtilization: null, gpuMemoryUtilizationKey: null, parallelism: 1, parallelismKey: 'cluster.num_workers', parallelismKind: 'data', gpusPerNode: 0 };
const nemoKnobs: OomKnobs = { microBatch: 1, logprobBatch: 1, generationBatch: null, generationBatchKey: null, gpuMemoryUtilization: 0.8, gpuMemoryUtilizationKey: 'policy.generation.vllm_cfg.gpu_memory_utilization', parallelism: 2, parallelismKey: 'policy.megatron_cfg.tensor_model_parallel_size', parallelismKind: 'tensor', gpusPerNode: 8 };
const base = { stage: 'train', used: 0, settings: DEFAULT_RECOVERY, retryAfterSeconds: null, oom: builtinKnobs, modelCached: true, random: 0.5 };

test('OOM ladder (built-in): halve the micro batch down to its bound, then the generation batch, then fail', () => {
  assert.deepEqual(oomChanges(builtinKnobs, DEFAULT_RECOVERY.oom)?.changes, ['policy.train_micro_batch_size=4']);
  assert.deepEqual(oomChanges({ ...builtinKnobs, microBatch: 1 }, DEFAULT_RECOVERY.oom)?.changes, ['grpo.val_batch_size=4']);
  assert.equal(oomChanges({ ...builtinKnobs, microBatch: 1, generationBatch: 1 }, DEFAULT_RECOVERY.oom), null);
  const bounded = { ...DEFAULT_RECOVERY.oom, min_micro_batch_size: 4 };
  assert.deepEqual(oomChanges({ ...builtinKnobs, microBatch: 4 }, bounded)?.changes, ['grpo.val_batch_size=4']);
  const a = decide({ ...base, type: 'OutOfMemory', oom: { ...builtinKnobs, microBatch: 1, generationBatch: 1 } });
  assert.equal(a.kind, 'fail');
});

test('OOM ladder (NeMo RL): micro batch 1 → lower vLLM memory share to 0.5 → raise tensor parallelism within GPUs', () => {
  assert.deepEqual(oomChanges(nemoKnobs, DEFAULT_RECOVERY.oom)?.changes, ['policy.generation.vllm_cfg.gpu_memory_utilization=0.7']);
  assert.deepEqual(oomChanges({ ...nemoKnobs, gpuMemoryUtilization: 0.5 }, DEFAULT_RECOVERY.oom)?.changes, ['policy.megatron_cfg.tensor_model_parallel_size=4']);
  assert.equal(oomChanges({ ...nemoKnobs, gpuMemoryUtilization: 0.5, parallelism: 8 }, DEFAULT_RECOVERY.oom), null);
  assert.deepEqual(oomChanges({ ...nemoKnobs, microBatch: 4, logprobBatch: 4 }, DEFAULT_RECOVERY.oom)?.changes, ['policy.train_micro_batch_size=2', 'policy.logprob_batch_size=2']);
});

test('each failure type has its own budget', () => {
  assert.equal(decide({ ...base, type: 'OutOfMemory', used: 2 }).kind, 'retry');
  assert.equal(decide({ ...base, type: 'OutOfMemory', used: 3 }).kind, 'fail');
  // A spent OOM budget does not touch the Ray budget.
  assert.equal(decide({ ...base, type: 'RayFailure', used: 0 }).kind, 'retry');
  assert.equal(decide({ ...base, type: 'RayFailure', used: 3 }).kind, 'fail');
});

test('config and data errors fail at once; unknown failures back off within a budget', () => {
  for (const t of ['InvalidConfig', 'InvalidData', 'ModelLoad']) assert.equal(decide({ ...base, type: t }).kind, 'fail');
  const u = decide({ ...base, type: 'Unknown' });
  assert.equal(u.kind, 'retry');
  assert.ok(u.waitSeconds >= 5 && u.waitSeconds <= 10);
  assert.equal(decide({ ...base, type: 'SomethingNew', used: 3 }).kind, 'fail');
});

test('Ray failures restart Ray; host-wide cleanup only when the config asks', () => {
  const a = decide({ ...base, type: 'RayFailure' });
  assert.deepEqual([a.restartRay, a.forceCleanup], [true, false]);
  const b = decide({ ...base, type: 'RayFailure', settings: { ...DEFAULT_RECOVERY, force_cleanup: true } });
  assert.equal(b.forceCleanup, true);
});

test('rate limits wait Retry-After, go offline once the model is cached and stop forced venv rebuilds', () => {
  const a = decide({ ...base, type: 'RateLimited', retryAfterSeconds: 30, stage: 'prepareEnvironment' });
  assert.deepEqual([a.waitSeconds, a.goOffline, a.stopForcedVenvRebuild], [30, true, true]);
  const b = decide({ ...base, type: 'RateLimited', stage: 'fetchModel', modelCached: false, used: 2, random: 0 });
  assert.equal(b.goOffline, false);
  assert.equal(b.waitSeconds, backoffSeconds(2, DEFAULT_RECOVERY.backoff, 0));
  assert.equal(backoffSeconds(10, DEFAULT_RECOVERY.backoff, 0.999), 599.7); // capped at max_s
});
