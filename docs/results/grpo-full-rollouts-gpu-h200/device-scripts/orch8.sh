#!/usr/bin/env bash
# Issue #12, GPU config, first run with full rollouts (each turn max_new_tokens, the rollout the context
# left): warm start on all 517 traces as shipped, then three GRPO runs from it, 60 steps each, checkpoints
# every 15 steps, each evaluated on all 138 validation tasks.
#  G-ship:   configs/builtin-gpu.yaml as shipped (shaped reward, lr 1e-5)
#  G-3e5:    shaped reward, lr 3e-5
#  G-task3e5: task reward only, lr 3e-5
set -u
END=$1
source .whl/s/env.sh
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True OMP_NUM_THREADS=3
W=/tmp/w; VAL=/tmp/pk/wpdata/validation.jsonl; TRAIN=/tmp/pk/wpdata/train.jsonl; TRAINB=/tmp/pk/wpdata/train-half-b.jsonl
GCFG=configs/builtin-gpu.yaml
T0=$(date +%s)
log() { echo "[orch $(date +%T) +$(( $(date +%s) - T0 ))s left=$(( END - $(date +%s) ))s] $*" >> $W/orch.log; }
gpu_log() { while true; do echo "$(date +%T) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)" >> $W/gpu.log; sleep 15; done; }
acc() { python3 -c "import json;print(round(json.load(open('$1'))['accuracy'],4))" 2>/dev/null; }
eval_gpu() {
  (( $(date +%s) > END - 60 )) && { log "skip eval-$2 (time)"; return; }
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $GCFG \
    grpo.val_batch_size=138 > $W/eval-$2.log 2>&1
  log "eval-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/eval-$2.json)"
}
warm() {  # NAME TRACES
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $GCFG --traces $2 --model /tmp/smollm2 --out /tmp/warm-$1 \
    warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 > $W/warm-$1.log 2>&1
  log "warm-$1 rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/warm-$1/warm_start.json $W/warm-$1.json 2>/dev/null
}
grpo() {  # WARM NAME TRAINFILE [overrides]
  local m=/tmp/warm-$1/model n=$2 data=$3; shift 3
  local s=$(date +%s)
  python3 -m grpo_trainer train --config $GCFG policy.model_name=$m \
    data.train.data_path=$data data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$n logger.log_dir=/tmp/lg-$n grpo.max_num_steps=60 grpo.max_num_epochs=100 \
    policy.activation_checkpointing=true grpo.val_batch_size=128 \
    grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
    checkpointing.save_period=15 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false "$@" > $W/train-$n.log 2>&1
  log "grpo $n rc=$? $(( $(date +%s) - s ))s $(grep -o 'training pool .*probed in [0-9]*s' $W/train-$n.log)"
  touch /tmp/ck-$n/.ended
}
watch_evals() {  # NAME: evaluate every finished checkpoint once, until training ends
  local n=$1
  while true; do
    local ended=0; [[ -e /tmp/ck-$n/.ended ]] && ended=1
    for d in /tmp/ck-$n/step_*; do
      [[ -d $d && ! -e $W/eval-$n-${d##*/}.json && ! -e $W/.started-$n-${d##*/} ]] || continue
      touch $W/.started-$n-${d##*/}; eval_gpu $d $n-${d##*/}
    done
    cp /tmp/lg-$n/metrics.jsonl $W/metrics-$n.jsonl 2>/dev/null; cp /tmp/ck-$n/training_pool.json $W/pool-$n.json 2>/dev/null
    (( ended )) && break
    (( $(date +%s) > END )) && break
    sleep 10
  done
}
run() {  # WARM NAME TRAINFILE [overrides]
  grpo "$@" & watch_evals $2; wait
}
gpu_log & GPULOG=$!
log "start END=$END nproc=$(nproc)"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
warm F /tmp/pk/traces-gpu.jsonl
eval_gpu /tmp/warm-F/model warm-F &
PIDS=""
run F G-ship $TRAIN & PIDS="$PIDS $!"
run F G-3e5 $TRAIN policy.optimizer.lr=3e-5 & PIDS="$PIDS $!"
run F G-task3e5 $TRAIN policy.optimizer.lr=3e-5 grpo.reward_shaping.enabled=false & PIDS="$PIDS $!"
wait $PIDS
sleep 5; kill $GPULOG
log "DONE"
