#!/usr/bin/env bash
# Device call 3 (issue #15): compiled generation with the input-grad hooks off during generate (no graph break),
# at 64 and 256 rollouts per step; dynamo's graph-break / recompile logs in the trainer logs.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
T0=$(date +%s)
[ -d /tmp/site/trl ] || bash .whl/g/unpack.sh
export PYTHONPATH=/tmp/site:$PWD/trainer TORCH_LOGS="graph_breaks,recompiles,perf_hints"
timeout -s TERM 125 python3 trainer/bench/bench_grpo_step_gpu.py --random-from /tmp/pk/smol --data-dir /tmp/pk/wpdata \
  --out $OUT/bench-grpo-step-h200-64-nohook.json --work-dir /tmp/b3 --modes compiled --warmup 2 --steps 3 \
  --run-timeout 115 2>&1 | tee $OUT/bench-64-nohook.log
cp /tmp/b3/compiled.log $OUT/bench-64-nohook-compiled-trainer.log
echo "call done in $(( $(date +%s) - T0 ))s"
