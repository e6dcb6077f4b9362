#!/usr/bin/env bash
# Issue #12 on one GPU: base and warm evaluations, warm start, then GRPO from the warmed model while a
# side loop evaluates every checkpoint on the full validation split; everything ends by END (epoch s).
set -u
END=$1
source .whl/s/env.sh
W=/tmp/w; CFG=configs/builtin-gpu.yaml; VAL=/tmp/pk/wpdata/validation.jsonl; TRAIN=/tmp/pk/wpdata/train.jsonl
T0=$(date +%s)
log() { echo "[orch $(date +%T) +$(( $(date +%s) - T0 ))s left=$(( END - $(date +%s) ))s] $*" >> $W/orch.log; }
gpu_log() { while true; do echo "$(date +%T) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)" >> $W/gpu.log; sleep 15; done; }
# evaluate MODEL NAME: all 138 validation tasks, greedy, decoded with the compiled static cache;
# if that route fails, once more with the dynamic cache (recorded in the log).
evaluate() {
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $CFG \
    grpo.val_batch_size=138 > $W/eval-$2.log 2>&1
  local rc=$?
  if (( rc != 0 )); then
    log "eval-$2 compiled rc=$rc; again with the dynamic cache"
    python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $CFG \
      grpo.val_batch_size=138 policy.generation.compiled_static_cache=false > $W/eval-$2-eager.log 2>&1
    rc=$?
  fi
  log "eval-$2 rc=$rc $(( $(date +%s) - s ))s acc=$(python3 -c "import json;print(json.load(open('$W/eval-$2.json'))['accuracy'])" 2>/dev/null)"
}
gpu_log & GPULOG=$!
log "start END=$END"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
evaluate /tmp/smollm2 base & BASE=$!
s=$(date +%s)
python3 -m grpo_trainer warm-start --config $CFG --traces /tmp/pk/traces.jsonl --model /tmp/smollm2 --out /tmp/warm > $W/warm.log 2>&1
log "warm-start rc=$? $(( $(date +%s) - s ))s"
s=$(date +%s)
evaluate /tmp/warm/model warm
EVAL_S=$(( $(date +%s) - s ))
wait $BASE
# GRPO: two epochs at most (138 steps), no in-training validation (the side loop evaluates every
# checkpoint on all 138 tasks instead), a checkpoint every 10 steps, none deleted.
s=$(date +%s)
python3 -m grpo_trainer train --config $CFG policy.model_name=/tmp/warm/model \
  data.train.data_path=$TRAIN data.validation.data_path=$VAL \
  checkpointing.checkpoint_dir=/tmp/ckpt logger.log_dir=/tmp/logs grpo.max_num_steps=138 \
  grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
  checkpointing.save_period=10 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false > $W/train.log 2>&1 &
TRAIN_PID=$!
log "train started pid $TRAIN_PID; evaluation took ${EVAL_S}s"
RESERVE=$(( EVAL_S * 3 / 2 + 40 ))
declare -A seen
EVALS=()
while kill -0 $TRAIN_PID 2>/dev/null; do
  for d in $(ls -d /tmp/ckpt/step_* 2>/dev/null | sort -t_ -k2 -n); do
    n=${d##*/}
    if [[ -z "${seen[$n]:-}" ]]; then seen[$n]=1; evaluate $d $n & EVALS+=($!); log "evaluating $n"; fi
  done
  if (( END - $(date +%s) < RESERVE )); then
    log "time: stopping the trainer (reserve ${RESERVE}s)"; kill -TERM $TRAIN_PID; sleep 20; kill -KILL $TRAIN_PID 2>/dev/null
    break
  fi
  sleep 5
done
wait $TRAIN_PID 2>/dev/null; log "train exited rc=$? $(( $(date +%s) - s ))s"
for d in $(ls -d /tmp/ckpt/step_* 2>/dev/null | sort -t_ -k2 -n); do
  n=${d##*/}
  if [[ -z "${seen[$n]:-}" ]]; then seen[$n]=1; evaluate $d $n & EVALS+=($!); log "evaluating $n (after training)"; fi
done
for p in "${EVALS[@]}"; do wait $p; done
cp /tmp/logs/metrics.jsonl $W/grpo-metrics.jsonl 2>/dev/null
kill $GPULOG
log "DONE"
