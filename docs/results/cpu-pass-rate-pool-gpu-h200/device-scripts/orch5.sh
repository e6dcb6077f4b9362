#!/usr/bin/env bash
# One GPU session (issue #12): does a pass-rate pool (data.pool_selection=pass_rate) give GRPO a signal
# on the CPU config, and does the low-memory warm start (batch 1 x 8) learn as batch 8 does?
# CPU config in fp32 with eager decoding (what the 2-core CPU runs), warm starts in bf16 autocast on CUDA.
#  - warm wb (batch 8) and wb1 (batch 1 x gradient accumulation 8), each evaluated on the 48 tasks;
#  - from wb: GRPO with the pass-rate pool at lr 2e-5 (seeds 42, 7), 5e-5, 1e-4, and the random pool at 2e-5;
#    from wb1: the pass-rate pool at 2e-5; every checkpoint evaluated on the 48 tasks.
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
  log "grpo $name rc=$? $(( $(date +%s) - s ))s $(grep -o 'training pool .*probed in [0-9]*s' $W/train-$name.log)"
  cp /tmp/lg-$name/metrics.jsonl $W/metrics-$name.jsonl 2>/dev/null
  cp /tmp/ck-$name/training_pool.json $W/pool-$name.json 2>/dev/null
  for d in /tmp/ck-$name/step_*; do [[ -d $d ]] && eval_cpu $d $name-${d##*/}; done
}
warm() {  # NAME overrides...
  local name=$1; shift
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $CCFG --traces /tmp/pk/traces-cpu.jsonl --model /tmp/smollm2 \
    --out /tmp/cw-$name policy.precision=bfloat16 "$@" > $W/cwarm-$name.log 2>&1
  log "warm $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/cw-$name/warm_start.json $W/cwarm-$name.json 2>/dev/null
  cp /tmp/cw-$name/metrics.jsonl $W/cwarm-metrics-$name.jsonl 2>/dev/null
  eval_cpu /tmp/cw-$name/model warm-$name
}
PR="data.pool_selection=pass_rate"
log "start END=$END nproc=$(nproc)"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
(
  warm wb
  M=/tmp/cw-wb/model
  grpo_cpu $M wb-pr-lr2e5 $PR &
  grpo_cpu $M wb-pr-lr2e5-s7 $PR grpo.seed=7 &
  grpo_cpu $M wb-pr-lr5e5 $PR policy.optimizer.lr=5e-5 &
  grpo_cpu $M wb-pr-lr1e4 $PR policy.optimizer.lr=1e-4 &
  grpo_cpu $M wb-rnd-lr2e5 &
  wait
) &
(
  warm wb1 warm_start.batch_size=1 warm_start.gradient_accumulation_steps=8
  grpo_cpu /tmp/cw-wb1/model wb1-pr-lr2e5 $PR
) &
while (( $(left) > 30 )) && pgrep -f "grpo_trainer (train|evaluate|warm-start)" > /dev/null; do sleep 5; done
sleep 3
while (( $(left) > 30 )) && pgrep -f "grpo_trainer (train|evaluate|warm-start)" > /dev/null; do sleep 5; done
pkill -TERM -f "grpo_trainer" 2>/dev/null
log "DONE"
