#!/usr/bin/env bash
# Device call 1 (issue #15): unpack, versions, then the GRPO step benchmark, eager vs compiled generation.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
T0=$(date +%s)
bash .whl/g/unpack.sh
export PYTHONPATH=/tmp/site:$PWD/trainer
echo "unpacked in $(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.mem --format=csv
python3 -c "import sys, torch, transformers, trl, accelerate, datasets; print(sys.version.split()[0], torch.__version__, transformers.__version__, trl.__version__, accelerate.__version__, datasets.__version__, torch.cuda.get_device_name(0))"
which node || echo "no node on the machine (carried: /tmp/node/node)"
timeout -s TERM 545 python3 trainer/bench/bench_grpo_step_gpu.py --random-from /tmp/pk/smol --data-dir /tmp/pk/wpdata \
  --out $OUT/bench-grpo-step-h200.json --work-dir /tmp/b1 --modes eager,compiled --warmup 2 --steps 3 --check \
  --run-timeout 320 2>&1 | tee $OUT/bench.log
for m in eager compiled; do cp /tmp/b1/$m.log $OUT/bench-$m-trainer.log 2>/dev/null; done
echo "call done in $(( $(date +%s) - T0 ))s"
