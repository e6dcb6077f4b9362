#!/usr/bin/env bash
# Follow the pipeline run for up to $1 seconds (or until the quickstart ends); pack its small files into $OUT.
set -u; source .whl/s/p_env.sh; T0=$(date +%s)
R=/tmp/gstate/runs/gpu-pipeline
while (( $(date +%s) - T0 < $1 )); do
  pgrep -f "grpo.js quickstart" >/dev/null || { echo "quickstart ended"; break; }
  sleep 15
done
echo "--- quickstart output (tail)"; tail -40 $W/qs.out
echo "--- gpu"; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
echo "--- run dir"; ls $R 2>/dev/null; tail -5 $R/logs/*.log 2>/dev/null | tail -30
mkdir -p $OUT && tar -C /tmp --exclude='*.safetensors' --exclude='*.pt' --exclude='*.pth' --exclude='*.bin' --exclude='*.gguf' \
  --exclude='gstate/envs' --exclude='gstate/tools' --exclude='gstate/models' --exclude='gstate/server' -cJf $OUT/gstate.tar.xz gstate w 2>/dev/null
ls -la $OUT
