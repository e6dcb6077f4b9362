#!/usr/bin/env bash
# Fifteenth session (#15 Changes 7 and 8 on the warmed model, then #12's 256-rollout step). After prepare-model
# and the GPU config's warm start: (1) varlen_check.py, Change 8's attention alone against the block mask;
# (2) bench A: the GRPO step benchmark on the warmed model, compiled decoding with grouped attention (the
# default), each micro batch's training replayed packed, packed+varlen and packed+varlen+compiled; (3) bench B:
# the same step with grouped_decode_attention=false, no replays (Change 7's before, on real tool turns);
# (4) R256: GRPO from the warm start as shipped but 32 tasks x 8 rollouts a step, checkpoints every 10 steps
# evaluated on the 138 validation tasks beside training, until END. Waits only on named PIDs.
set -u
END=$1; BENCH_A_S=${BENCH_A_S:-560}; BENCH_B_S=${BENCH_B_S:-300}
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
bench() {  # NAME SECONDS ARGS...
  local n=$1 secs=$2; shift 2
  local s=$(date +%s)
  (( s + secs > END - 60 )) && secs=$(( END - 60 - s ))
  (( secs < 120 )) && { log "skip bench-$n (time)"; return; }
  timeout -s TERM $secs python3 trainer/bench/bench_grpo_step_gpu.py --model /tmp/warm-F/model --data-dir /tmp/pk/wpdata \
    --out $W/bench-$n.json --modes compiled --warmup 1 --steps 2 --work-dir /tmp/bw-$n --run-timeout $(( secs - 20 )) \
    "$@" > $W/bench-$n.log 2>&1
  log "bench-$n rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/bw-$n/compiled.log $W/bench-$n-child.log 2>/dev/null
  cp /tmp/bw-$n/compiled/logs/metrics.jsonl $W/bench-$n-metrics.jsonl 2>/dev/null
}
gpu_log & GPULOG=$!
( while true; do for d in /tmp/lg-*; do [[ -e $d/metrics.jsonl ]] && cp $d/metrics.jsonl $W/metrics-${d#/tmp/lg-}.jsonl; done; sleep 10; done ) & COPIER=$!
log "start END=$END"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
s=$(date +%s)
timeout 120 python3 .whl/s/varlen_check.py $W/varlen-check.json > $W/varlen-check.log 2>&1
log "varlen-check rc=$? $(( $(date +%s) - s ))s"
s=$(date +%s)
python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 --out /tmp/warm-F \
  warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 > $W/warm-F.log 2>&1
log "warm-F rc=$? $(( $(date +%s) - s ))s"
cp /tmp/warm-F/warm_start.json $W/warm-F.json 2>/dev/null
bench A $BENCH_A_S --training-variants packed,packed+varlen,packed+varlen+compiled
bench B $BENCH_B_S --set policy.generation.grouped_decode_attention=false
if (( $(date +%s) < END - 300 )); then
  eval_gpu /tmp/warm-F/model warm-F & EW=$!
  n=R256; s=$(date +%s)
  log "grpo $n start"
  python3 -m grpo_trainer train --config $GCFG policy.model_name=/tmp/warm-F/model \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL grpo.num_prompts_per_step=32 \
    checkpointing.checkpoint_dir=/tmp/ck-$n logger.log_dir=/tmp/lg-$n grpo.max_num_steps=60 grpo.max_num_epochs=100 \
    grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
    checkpointing.save_period=10 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false > $W/train-$n.log 2>&1 & T1=$!
  ( while true; do
      for d in /tmp/ck-$n/step_*; do
        [[ -d $d && ! -e $W/.started-${d##*/} ]] || continue
        touch $W/.started-${d##*/}; eval_gpu $d $n-${d##*/}
      done
      (( $(date +%s) > END - 150 )) && break
      sleep 10
    done ) & V1=$!
  while kill -0 $T1 2>/dev/null && (( $(date +%s) < END - 40 )); do sleep 5; done
  pkill -TERM -f "grpo_trainer train" 2>/dev/null; wait $T1 2>/dev/null
  log "grpo $n ended $(( $(date +%s) - s ))s"
  kill $V1 2>/dev/null; wait $EW 2>/dev/null
  cp /tmp/lg-$n/metrics.jsonl $W/metrics-$n.jsonl 2>/dev/null
fi
sleep 2; kill $GPULOG $COPIER
log "DONE"
