#!/usr/bin/env bash
# One GPU session (issue #12, the CPU config as shipped now: all layers x 3 epochs, GRPO from a pool of 4
# tasks x 3 epochs), run in fp32 with eager decoding (what the 2-core CPU runs) except the warm start's
# precision, which is the question:
#  - warm start in bf16 autocast on CUDA (wb), in bf16 autocast on this host's CPU (wc, the code path a
#    CPU with AVX512-BF16 takes), and in fp32 (wf, last sessions' 0.375 reference);
#  - from each, 12 GRPO steps at lr 2e-5 / 5e-5 / 1e-4; every checkpoint evaluated on the 48 quickstart tasks.
set -u
END=$1
source .whl/s/env.sh
export OMP_NUM_THREADS=2 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
W=/tmp/w; VAL=/tmp/pk/wpdata/validation.jsonl; TRAIN=/tmp/pk/wpdata/train.jsonl
CCFG=configs/builtin-cpu.yaml
CPU_LIKE="policy.precision=float32 policy.generation.compiled_static_cache=false"
T0=$(date +%s)
log() { echo "[orch $(date +%T) +$(( $(date +%s) - T0 ))s left=$(( END - $(date +%s) ))s] $*" >> $W/orch.log; }
left() { echo $(( END - $(date +%s) )); }
acc() { python3 -c "import json;print(round(json.load(open('$1'))['accuracy'],4))" 2>/dev/null; }
eval_cpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --limit 48 --out $W/cev-$2.json --config $CCFG \
    $CPU_LIKE grpo.val_batch_size=48 > $W/cev-$2.log 2>&1
  log "cev-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/cev-$2.json)"
}
grpo_cpu() {  # WARM_DIR NAME [overrides]
  local model=$1 name=$2; shift 2
  local s=$(date +%s)
  python3 -m grpo_trainer train --config $CCFG policy.model_name=$model $CPU_LIKE \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$name logger.log_dir=/tmp/lg-$name "$@" > $W/train-$name.log 2>&1
  log "grpo $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/lg-$name/metrics.jsonl $W/metrics-$name.jsonl 2>/dev/null
  for d in /tmp/ck-$name/step_*; do [[ -d $d ]] && eval_cpu $d $name-${d##*/}; done
}
chain() {  # NAME [env prefix for the warm start...] -- warm-start overrides
  local name=$1; shift
  local s=$(date +%s)
  env "$@" python3 -m grpo_trainer warm-start --config $CCFG --traces /tmp/pk/traces-cpu.jsonl --model /tmp/smollm2 \
    --out /tmp/cw-$name $WS_OVR > $W/cwarm-$name.log 2>&1
  log "warm $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/cw-$name/warm_start.json $W/cwarm-$name.json 2>/dev/null
  cp /tmp/cw-$name/metrics.jsonl $W/cwarm-metrics-$name.jsonl 2>/dev/null
  local M=/tmp/cw-$name/model
  eval_cpu $M warm-$name &
  grpo_cpu $M $name-lr2e5 &
  grpo_cpu $M $name-lr5e5 policy.optimizer.lr=5e-5 &
  grpo_cpu $M $name-lr1e4 policy.optimizer.lr=1e-4 &
  wait
}
log "start END=$END nproc=$(nproc) $(grep -o -m1 -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | head -1)"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
eval_cpu /tmp/smollm2 base &
WS_OVR="policy.precision=bfloat16" chain wb OMP_NUM_THREADS=2 &
WS_OVR="policy.precision=float32" chain wf OMP_NUM_THREADS=2 &
WS_OVR="" chain wc CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=10 &
while (( $(left) > 30 )) && pgrep -f "grpo_trainer (train|evaluate|warm-start)" > /dev/null; do sleep 5; done
pkill -TERM -f "grpo_trainer" 2>/dev/null
log "DONE"
