#!/usr/bin/env bash
# Follow call: wait for bench C128 to end, stop the orchestrator before A16, rerun C64 with room for 3 steps.
set -u
source .whl/s/env.sh
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True OMP_NUM_THREADS=2
W=/tmp/w
while ! grep -q "bench-C128" $W/orch.log; do sleep 3; done
pkill -TERM -f orch22.sh; sleep 1; pkill -TERM -f bench_grpo_step_gpu.py; sleep 5
cat $W/orch.log
s=$(date +%s)
cd /tmp/repo && timeout -s TERM $1 python3 trainer/bench/bench_grpo_step_gpu.py --model /tmp/warm-F/model \
  --data-dir /tmp/pk/wpdata --out $W/bench-C64b.json --modes eager --warmup 1 --steps 2 --work-dir /tmp/bw-C64b \
  --run-timeout $(( $1 - 15 )) --set policy.train_micro_batch_size=64 --set policy.compiled_training_forward=true \
  > $W/bench-C64b.log 2>&1
echo "bench-C64b rc=$? $(( $(date +%s) - s ))s"
cp /tmp/bw-C64b/eager.log $W/bench-C64b-child.log; cp /tmp/bw-C64b/eager/logs/metrics.jsonl $W/bench-C64b-metrics.jsonl
pkill -f "nvidia-smi|sleep 15" ; tail -4 $W/bench-C64b.log
mkdir -p $OUT && tar -C /tmp -cJf $OUT/w.tar.xz w
