#!/usr/bin/env bash
# CPU-config warm-start variants between the shipped one and the full one (fp32, eager), each on the quickstart's 48 tasks.
set -u
source .whl/s/env.sh
export OMP_NUM_THREADS=2 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
W=/tmp/w; VAL=/tmp/pk/wpdata/validation.jsonl; CCFG=configs/builtin-cpu.yaml; CT=/tmp/pk/traces-cpu.jsonl
CPU_LIKE="policy.precision=float32 policy.generation.compiled_static_cache=false"
T0=$(date +%s)
log() { echo "[orch2 $(date +%T) +$(( $(date +%s) - T0 ))s] $*" >> $W/orch.log; }
acc() { python3 -c "import json;print(round(json.load(open('$1'))['accuracy'],4))" 2>/dev/null; }
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare rc=$?"
v() {
  local name=$1; shift; local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $CCFG --traces $CT --model /tmp/smollm2 --out /tmp/cw-$name \
    policy.precision=float32 warm_start.max_examples=null "$@" > $W/cwarm-$name.log 2>&1
  log "warm $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/cw-$name/warm_start.json $W/cwarm-$name.json
  python3 -m grpo_trainer evaluate --model /tmp/cw-$name/model --tasks $VAL --limit 48 --out $W/cev-warm-$name.json \
    --config $CCFG $CPU_LIKE grpo.val_batch_size=48 > $W/cev-warm-$name.log 2>&1
  log "cev-warm-$name acc=$(acc $W/cev-warm-$name.json)"
}
v c6-all-2ep warm_start.trainable_layers=null warm_start.epochs=2 &
v c7-top8-3ep warm_start.epochs=3 &
v c8-top8-3ep-lr5e4 warm_start.epochs=3 warm_start.lr=5e-4 &
v c9-top16-2ep warm_start.trainable_layers=16 warm_start.epochs=2 &
v c10-all-2ep-lr3e4 warm_start.trainable_layers=null warm_start.epochs=2 warm_start.lr=3e-4 &
v c11-all-1ep-lr5e4 warm_start.trainable_layers=null warm_start.epochs=1 warm_start.lr=5e-4 &
wait
log DONE
