#!/usr/bin/env bash
# One GPU session, two studies, everything ends by END (epoch s):
#  A. issue #12, the CPU config in fp32 with eager decoding (what the 2-core CPU runs): two warm starts
#     (top 8 layers x 3 epochs at lr 5e-4; all layers x 3 epochs), each followed by 12 GRPO steps drawn
#     from all training tasks (shipped) or from a small pool visited several times (data.max_train_tasks),
#     every checkpoint evaluated on the quickstart's 48 tasks.
#  B. issue #12, GPU config: warm start of 3 epochs, then GRPO on the task reward only (shaping off) at
#     lr 1e-5 and 3e-5; every checkpoint (every 20 steps) evaluated on all 138 validation tasks.
set -u
END=$1
source .whl/s/env.sh
export OMP_NUM_THREADS=2 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
W=/tmp/w; VAL=/tmp/pk/wpdata/validation.jsonl; TRAIN=/tmp/pk/wpdata/train.jsonl
GCFG=configs/builtin-gpu.yaml; CCFG=configs/builtin-cpu.yaml
CPU_LIKE="policy.precision=float32 policy.generation.compiled_static_cache=false"
T0=$(date +%s)
log() { echo "[orch $(date +%T) +$(( $(date +%s) - T0 ))s left=$(( END - $(date +%s) ))s] $*" >> $W/orch.log; }
left() { echo $(( END - $(date +%s) )); }
gpu_log() { while true; do echo "$(date +%T) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)" >> $W/gpu.log; sleep 15; done; }
acc() { python3 -c "import json;print(round(json.load(open('$1'))['accuracy'],4))" 2>/dev/null; }
eval_gpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $GCFG \
    grpo.val_batch_size=138 > $W/eval-$2.log 2>&1
  log "eval-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/eval-$2.json)"
}
eval_cpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --limit 48 --out $W/cev-$2.json --config $CCFG \
    $CPU_LIKE grpo.val_batch_size=48 > $W/cev-$2.log 2>&1
  log "cev-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/cev-$2.json)"
}
gpu_log & GPULOG=$!
log "start END=$END"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"

# ---- B first (it is the long one): GPU config
grpo_gpu() {  # WARM_DIR NAME [overrides]
  local m=$1 n=$2; shift 2
  python3 -m grpo_trainer train --config $GCFG policy.model_name=$m \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$n logger.log_dir=/tmp/lg-$n grpo.max_num_steps=138 \
    grpo.reward_shaping.enabled=false policy.activation_checkpointing=true \
    grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
    checkpointing.save_period=20 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false "$@" > $W/train-$n.log 2>&1
}
gpu_chain() {
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 --out /tmp/warm3 \
    warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 > $W/warm3.log 2>&1
  log "warm3 rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/warm3/warm_start.json $W/warm3.json 2>/dev/null
  eval_gpu /tmp/warm3/model warm3 &
  grpo_gpu /tmp/warm3/model g3 & echo $! > $W/pid-g3
  grpo_gpu /tmp/warm3/model g3h policy.optimizer.lr=3e-5 & echo $! > $W/pid-g3h
  log "grpo g3, g3h started"
  wait
}
gpu_chain & GPU_CHAIN=$!

# ---- A: the CPU config in fp32
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
POOL4="data.max_train_tasks=4 grpo.max_num_epochs=3"
POOL3="data.max_train_tasks=3 grpo.max_num_epochs=4"
cpu_chain() {  # NAME [warm-start overrides]
  local name=$1; shift
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $CCFG --traces /tmp/pk/traces-cpu.jsonl --model /tmp/smollm2 --out /tmp/cw-$name \
    policy.precision=float32 warm_start.max_examples=null warm_start.epochs=3 "$@" > $W/cwarm-$name.log 2>&1
  log "cpu warm $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/cw-$name/warm_start.json $W/cwarm-$name.json 2>/dev/null
  eval_cpu /tmp/cw-$name/model warm-$name &
  local M=/tmp/cw-$name/model
  grpo_cpu $M $name-ship &
  grpo_cpu $M $name-p4 $POOL4 &
  grpo_cpu $M $name-p4-lr1e4 $POOL4 policy.optimizer.lr=1e-4 &
  grpo_cpu $M $name-p4-lr1e4-t07 $POOL4 policy.optimizer.lr=1e-4 policy.generation.temperature=0.7 &
  grpo_cpu $M $name-p3-lr1e4 $POOL3 policy.optimizer.lr=1e-4 &
  wait
}
eval_cpu /tmp/smollm2 base &
cpu_chain w8 warm_start.lr=5e-4 &
cpu_chain wall warm_start.trainable_layers=null &

declare -A seen
EVALS=()
while true; do
  for run in g3 g3h; do
    for d in $(ls -d /tmp/ck-$run/step_* 2>/dev/null | sort -t_ -k2 -n); do
      n=$run-${d##*/}
      if [[ -z "${seen[$n]:-}" ]]; then seen[$n]=1; eval_gpu $d $n & EVALS+=($!); log "evaluating $n"; fi
    done
  done
  if (( $(left) < 200 )); then
    pkill -TERM -f "checkpoint_dir=/tmp/ck-g3" ; log "time: stopped the GPU trainers"; sleep 15; break
  fi
  kill -0 $GPU_CHAIN 2>/dev/null || { log "gpu chain ended"; break; }
  sleep 5
done
for run in g3 g3h; do cp /tmp/lg-$run/metrics.jsonl $W/metrics-$run.jsonl 2>/dev/null; done
for p in "${EVALS[@]}"; do wait $p; done
while (( $(left) > 30 )) && pgrep -f "grpo_trainer (train|evaluate|warm-start)" > /dev/null; do sleep 5; done
pkill -TERM -f "grpo_trainer" 2>/dev/null
kill $GPULOG
log "DONE"
