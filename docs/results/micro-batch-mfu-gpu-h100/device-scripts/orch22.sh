#!/usr/bin/env bash
# Seventeenth session (#15: the mask stand-in and larger micro batches, with the benchmark's real-token MFU).
# After prepare-model and the GPU config's warm start, the step's own training part (TRL's loss, backward, clip,
# optimizer), compiled, one sequence per micro batch, eager decoding, no replays: C64 = 64 rows a micro batch
# (the whole step); C32 = sixteenth session's bench C again (32 rows), now with the mask stand-in; C128 = 128
# rollouts a step (16 tasks x 8) in one micro batch; A16 = the shipped 16 rows. Until END.
set -u
END=$1; BENCH_S=${BENCH_S:-330}
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
bench() {  # NAME SECONDS MODE ARGS...
  local n=$1 secs=$2 mode=$3; shift 3
  local s=$(date +%s)
  (( s + secs > END - 60 )) && secs=$(( END - 60 - s ))
  (( secs < 120 )) && { log "skip bench-$n (time)"; return; }
  timeout -s TERM $secs python3 trainer/bench/bench_grpo_step_gpu.py --model /tmp/warm-F/model --data-dir /tmp/pk/wpdata \
    --out $W/bench-$n.json --modes $mode --warmup 1 --steps 2 --work-dir /tmp/bw-$n --run-timeout $(( secs - 20 )) \
    "$@" > $W/bench-$n.log 2>&1
  log "bench-$n rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/bw-$n/$mode.log $W/bench-$n-child.log 2>/dev/null
  cp /tmp/bw-$n/$mode/logs/metrics.jsonl $W/bench-$n-metrics.jsonl 2>/dev/null
}
gpu_log & GPULOG=$!
( while true; do for d in /tmp/lg-*; do [[ -e $d/metrics.jsonl ]] && cp $d/metrics.jsonl $W/metrics-${d#/tmp/lg-}.jsonl; done; sleep 10; done ) & COPIER=$!
log "start END=$END"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
s=$(date +%s)
python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 --out /tmp/warm-F \
  warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 > $W/warm-F.log 2>&1
log "warm-F rc=$? $(( $(date +%s) - s ))s"
cp /tmp/warm-F/warm_start.json $W/warm-F.json 2>/dev/null
bench C64 $BENCH_S eager --set policy.train_micro_batch_size=64 --set policy.compiled_training_forward=true
bench C32 $BENCH_S eager --set policy.train_micro_batch_size=32 --set policy.compiled_training_forward=true
bench C128 $BENCH_S eager --set grpo.num_prompts_per_step=16 --set policy.train_micro_batch_size=128 \
  --set policy.compiled_training_forward=true
bench A16 $BENCH_S eager --set policy.compiled_training_forward=true
sleep 2; kill $GPULOG $COPIER
log "DONE"
