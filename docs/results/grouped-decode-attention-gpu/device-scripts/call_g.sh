#!/usr/bin/env bash
# Fourteenth session, #15 Change 7 (grouped decoding attention). PHASE lat: the decoding-step benchmark,
# compiled static cache, SDPA's repeated heads vs grouped, batches 64 and 256, 1,500-token prompts + 256
# new tokens (a 1,792-token cache, as the step benchmark's), with ceilings and a kernel profile at 64.
# PHASE step: the GRPO step benchmark (random weights, compiled decoding), grouped off then on.
set -u
PHASE=$1
source .whl/s/env.sh
T0=$(date +%s)
if [[ ! -e /tmp/site/.unpacked ]]; then
  mkdir -p /tmp/site /tmp/pk
  python3 -c "
import tarfile
tarfile.open('.whl/d/site.tar.xz', 'r:xz').extractall('/tmp/site', filter='tar')
tarfile.open('.whl/d/pack.tar.xz', 'r:xz').extractall('/tmp/pk', filter='tar')
tarfile.open('.whl/d/smolcfg.tar.xz', 'r:xz').extractall('/tmp', filter='tar')
"
  touch /tmp/site/.unpacked
fi
echo "unpacked +$(( $(date +%s) - T0 ))s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)"
if [[ $PHASE == lat || $PHASE == all ]]; then
  for att in sdpa grouped; do
    s=$(date +%s)
    timeout ${LAT_S:-270} python3 trainer/bench/bench_generate_latency.py --config /tmp/smolcfg/config.json \
      --out $OUT/gen-$att.json --engine compiled --attention $att --batches 64,256 --prompt-len 1500 \
      --new-tokens 256 --repeats 2 --ceilings --profile-batch 64 --label "$att" > $OUT/gen-$att.log 2>&1
    echo "gen $att rc=$? $(( $(date +%s) - s ))s"; grep '^{' $OUT/gen-$att.log | cut -c1-400
  done
fi
if [[ $PHASE == step || $PHASE == all ]]; then
  for att in false true; do
    s=$(date +%s)
    timeout ${STEP_S:-280} python3 trainer/bench/bench_grpo_step_gpu.py --random-from /tmp/smolcfg --data-dir /tmp/pk/wpdata \
      --out $OUT/step-grouped-$att.json --modes compiled --warmup ${WARM:-2} --steps ${STEPS:-3} --work-dir /tmp/bs-$att \
      --run-timeout $(( ${STEP_S:-280} - 20 )) --set policy.generation.grouped_decode_attention=$att > $OUT/step-grouped-$att.log 2>&1
    echo "step grouped=$att rc=$? $(( $(date +%s) - s ))s"; tail -4 $OUT/step-grouped-$att.log | cut -c1-300
  done
fi
echo "done +$(( $(date +%s) - T0 ))s"
