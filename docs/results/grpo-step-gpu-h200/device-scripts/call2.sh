#!/usr/bin/env bash
# Device call 2 (issue #15): a real CUDA OOM and the pipeline's OOM ladder; then the step benchmark at 256 rollouts.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
T0=$(date +%s)
[ -x /tmp/node/node ] && [ -d /tmp/site/trl ] || bash .whl/g/unpack.sh
export PYTHONPATH=/tmp/site:$PWD/trainer
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
python3 -c "
import sys; sys.path.insert(0, 'trainer/bench')
from pathlib import Path
from bench_grpo_step_gpu import make_random_model
make_random_model(Path('/tmp/pk/smol'), Path('/tmp/rand'))" 2>&1 | grep -v Writing
# 1) 186 tasks x 8 rollouts = 1488, all in one micro batch (~2.6M padded tokens at ~76 KB each, call 1): does not fit.
timeout -s TERM 300 python3 trainer/bench/oom_ladder_gpu.py --model /tmp/rand --data-dir /tmp/pk/wpdata \
  --decision .whl/g/oom-decision.mjs --node /tmp/node/node --out $OUT/oom-ladder.json --log $OUT/oom-ladder.log \
  --work-dir /tmp/lad --attempt-timeout 200 --max-attempts 3 --steps 1 \
  --set grpo.num_prompts_per_step=186 --set policy.train_micro_batch_size=1488 \
  --set policy.generation.compiled_static_cache=false
echo "ladder done at $(( $(date +%s) - T0 ))s"
# 2) the benchmark at 32 tasks x 8 = 256 rollouts per step, compiled child with dynamo's graph-break/recompile logs
LEFT=$(( 575 - ($(date +%s) - T0) ))
TORCH_LOGS="graph_breaks,recompiles,perf_hints" timeout -s TERM $LEFT python3 trainer/bench/bench_grpo_step_gpu.py \
  --random-from /tmp/pk/smol --data-dir /tmp/pk/wpdata --out $OUT/bench-grpo-step-h200-256.json --work-dir /tmp/b2 \
  --modes compiled,eager --warmup 2 --steps 2 --check --run-timeout $(( LEFT / 2 + 40 )) \
  --set grpo.num_prompts_per_step=32 2>&1 | tee $OUT/bench-256.log
for m in eager compiled; do cp /tmp/b2/$m.log $OUT/bench-256-$m-trainer.log 2>/dev/null; done
echo "call done in $(( $(date +%s) - T0 ))s"
