#!/usr/bin/env bash
# Planned for the nineteenth session (#12: two levers for "GRPO adds 0.05 over the warm start" not yet tried on the
# GPU, docs/trainer.md seventh session): E1 = a one-epoch warm start (more diversity left for GRPO) then GRPO as
# shipped; T07 = the shipped 3-epoch warm start then GRPO with rollouts at temperature 0.7. Both GRPO runs share the
# GPU; checkpoints every 10 steps, each evaluated greedily on the 138 validation tasks beside training, until END.
set -u
END=$1
source .whl/s/env.sh
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True OMP_NUM_THREADS=2
W=/tmp/w; VAL=/tmp/pk/wpdata/validation.jsonl; TRAIN=/tmp/pk/wpdata/train.jsonl
GCFG=configs/builtin-gpu.yaml
T0=$(date +%s)
log() { echo "[orch $(date +%T) +$(( $(date +%s) - T0 ))s left=$(( END - $(date +%s) ))s] $*" >> $W/orch.log; }
gpu_log() { while true; do echo "$(date +%T) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader) load $(cut -d' ' -f1 /proc/loadavg)" >> $W/gpu.log; sleep 15; done; }
acc() { python3 -c "import json;print(round(json.load(open('$1'))['accuracy'],4))" 2>/dev/null; }
eval_gpu() {  # MODEL NAME
  (( $(date +%s) > END - 150 )) && { log "skip eval-$2 (time)"; return; }
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $GCFG \
    grpo.val_batch_size=138 > $W/eval-$2.log 2>&1
  log "eval-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/eval-$2.json)"
}
warm() {  # NAME ARGS...
  local n=$1 s=$(date +%s); shift
  python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 \
    --out /tmp/warm-$n warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 "$@" > $W/warm-$n.log 2>&1
  log "warm-$n rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/warm-$n/warm_start.json $W/warm-$n.json 2>/dev/null
}
grpo() {  # NAME WARM ARGS...: train in the background, evaluate each checkpoint as it lands
  local n=$1 wm=$2; shift 2
  log "grpo $n start"
  python3 -m grpo_trainer train --config $GCFG policy.model_name=/tmp/warm-$wm/model \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$n logger.log_dir=/tmp/lg-$n grpo.max_num_steps=90 grpo.max_num_epochs=100 \
    grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
    checkpointing.save_period=10 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false "$@" \
    > $W/train-$n.log 2>&1 &
  echo $! > $W/.pid-$n
  ( while (( $(date +%s) < END - 150 )); do
      for d in /tmp/ck-$n/step_*; do
        [[ -d $d && ! -e $W/.started-$n-${d##*/} ]] || continue
        touch $W/.started-$n-${d##*/}; eval_gpu $d $n-${d##*/}
      done
      sleep 10
    done ) &
}
gpu_log & GPULOG=$!
( while true; do for d in /tmp/lg-*; do [[ -e $d/metrics.jsonl ]] && cp $d/metrics.jsonl $W/metrics-${d#/tmp/lg-}.jsonl; done; sleep 10; done ) & COPIER=$!
log "start END=$END"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
warm F
warm E1 warm_start.epochs=1
eval_gpu /tmp/warm-F/model warm-F & E_F=$!
eval_gpu /tmp/warm-E1/model warm-E1 & E_E1=$!
grpo E1 E1
grpo T07 F policy.generation.temperature=0.7
while (( $(date +%s) < END - 40 )) && { kill -0 $(cat $W/.pid-E1) 2>/dev/null || kill -0 $(cat $W/.pid-T07) 2>/dev/null; }; do sleep 5; done
pkill -TERM -f "grpo_trainer train" 2>/dev/null; sleep 5
log "grpo ended"
wait $E_F $E_E1 2>/dev/null
for n in E1 T07; do cp /tmp/lg-$n/metrics.jsonl $W/metrics-$n.jsonl 2>/dev/null; done
sleep 2; kill $GPULOG $COPIER
log "DONE"
