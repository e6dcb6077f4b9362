#!/usr/bin/env bash
# One GPU session, three studies, everything ends by END (epoch s):
#  1. issue #15: the GRPO step benchmark (random SmolLM2-shaped weights), alone on the GPU:
#     activation checkpointing on (micro batch 16) / off (16) / off (64).
#  2. issue #12, GPU: warm start of 3 epochs and of 1 epoch, each followed by GRPO with the task reward
#     only (shaping off); every checkpoint (every 20 steps) evaluated on all 138 validation tasks.
#  3. issue #12, CPU config studied on the GPU in fp32 with eager decoding (what the 2-core CPU runs):
#     warm-start variants, each evaluated on the quickstart's 48 tasks, then 12 GRPO steps (shipped
#     settings, and lr 1e-4) with every checkpoint evaluated on the same 48 tasks.
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

# eval_gpu MODEL NAME: all 138 validation tasks, GPU config (compiled static cache, bf16)
eval_gpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $GCFG \
    grpo.val_batch_size=138 > $W/eval-$2.log 2>&1
  log "eval-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/eval-$2.json)"
}
# eval_cpu MODEL NAME CONFIG: the quickstart's 48 tasks of CONFIG's categories, fp32, eager
eval_cpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --limit 48 --out $W/cev-$2.json --config $3 \
    $CPU_LIKE grpo.val_batch_size=48 > $W/cev-$2.log 2>&1
  log "cev-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/cev-$2.json)"
}

gpu_log & GPULOG=$!
log "start END=$END"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"

# ---- 1. issue #15 benchmark, alone
for spec in "ckpt-on-mb16|--set policy.activation_checkpointing=true" "ckpt-off-mb16|" "ckpt-off-mb64|--set policy.train_micro_batch_size=64"; do
  name=${spec%%|*}; extra=${spec#*|}
  (( $(left) < 1300 )) && { log "bench $name skipped (time)"; continue; }
  s=$(date +%s)
  python3 trainer/bench/bench_grpo_step_gpu.py --random-from /tmp/smollm2 --data-dir /tmp/pk/wpdata \
    --out $W/bench-$name.json --work-dir /tmp/b-$name --modes compiled --warmup 2 --steps 3 --run-timeout 200 $extra \
    > $W/bench-$name.log 2>&1
  log "bench $name rc=$? $(( $(date +%s) - s ))s"
done

# ---- 2. issue #12 on the GPU config
grpo_gpu() {  # WARM_DIR NAME: GRPO, task reward only, until stopped
  python3 -m grpo_trainer train --config $GCFG policy.model_name=$1 \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$2 logger.log_dir=/tmp/lg-$2 grpo.max_num_steps=138 \
    grpo.reward_shaping.enabled=false policy.activation_checkpointing=true \
    grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
    checkpointing.save_period=20 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false > $W/train-$2.log 2>&1
}
gpu_chain() {
  local s=$(date +%s)
  # micro batch 8 x 2 accumulation = the config's 16 per optimizer step, in half the memory (other runs share the card)
  python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 --out /tmp/warm3 \
    warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 > $W/warm3.log 2>&1
  log "warm3 rc=$? $(( $(date +%s) - s ))s"
  eval_gpu /tmp/warm3/model warm3 &
  grpo_gpu /tmp/warm3/model g3 & echo $! > $W/pid-g3
  log "grpo g3 started"
  s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 --out /tmp/warm1 \
    warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 warm_start.epochs=1 > $W/warm1.log 2>&1
  log "warm1 rc=$? $(( $(date +%s) - s ))s"
  eval_gpu /tmp/warm1/model warm1 &
  grpo_gpu /tmp/warm1/model g1 & echo $! > $W/pid-g1
  log "grpo g1 started"
  wait
}

# ---- 3. the CPU config, studied in fp32
grpo_cpu() {  # WARM_DIR NAME CONFIG [overrides]: the quickstart's 12 steps
  local model=$1 name=$2 cfg=$3; shift 3
  local s=$(date +%s)
  python3 -m grpo_trainer train --config $cfg policy.model_name=$model $CPU_LIKE \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$name logger.log_dir=/tmp/lg-$name grpo.val_at_start=false "$@" > $W/train-$name.log 2>&1
  log "grpo $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/lg-$name/metrics.jsonl $W/metrics-$name.jsonl 2>/dev/null
  for d in /tmp/ck-$name/step_*; do [[ -d $d ]] && eval_cpu $d $name-${d##*/} $cfg; done
}
cpu_chain() {  # NAME TRACES CONFIG [warm-start overrides]
  local name=$1 traces=$2 cfg=$3; shift 3
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $cfg --traces $traces --model /tmp/smollm2 --out /tmp/cw-$name \
    policy.precision=float32 "$@" > $W/cwarm-$name.log 2>&1
  log "cpu warm $name rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/cw-$name/warm_start.json $W/cwarm-$name.json 2>/dev/null
  eval_cpu /tmp/cw-$name/model warm-$name $cfg
  (( $(left) < 420 )) && { log "cpu $name: no time for GRPO"; return; }
  grpo_cpu /tmp/cw-$name/model $name-ship $cfg &
  grpo_cpu /tmp/cw-$name/model $name-lr1e4 $cfg policy.optimizer.lr=1e-4 &
  wait
}

eval_cpu /tmp/smollm2 base $CCFG &
eval_cpu /tmp/smollm2 base-ecc .whl/s/cpu-ecc.yaml &
CT=/tmp/pk/traces-cpu.jsonl
cpu_chain c0-shipped $CT $CCFG &
cpu_chain c1-alltraces $CT $CCFG warm_start.max_examples=null &
cpu_chain c2-alllayers $CT $CCFG warm_start.trainable_layers=null &
cpu_chain c3-all-3ep $CT $CCFG warm_start.max_examples=null warm_start.trainable_layers=null warm_start.epochs=3 &
cpu_chain c4-ecc-2ep /tmp/pk/traces-cpu-ecc.jsonl .whl/s/cpu-ecc.yaml warm_start.max_examples=null warm_start.epochs=2 &
cpu_chain c5-lr1e3 $CT $CCFG warm_start.lr=1e-3 &
# the GPU warm starts need most of the card: start them once the small CPU-config warm starts are done
for i in $(seq 30); do (( $(ls /tmp/cw-*/warm_start.json 2>/dev/null | wc -l) >= 6 )) && break; sleep 5; done
log "cpu warm starts done: $(ls /tmp/cw-*/warm_start.json 2>/dev/null | wc -l) of 6"
gpu_chain & GPU_CHAIN=$!

# GPU GRPO: evaluate every new checkpoint; stop the trainers in time for the last evaluations
declare -A seen
EVALS=()
while true; do
  for run in g3 g1; do
    for d in $(ls -d /tmp/ck-$run/step_* 2>/dev/null | sort -t_ -k2 -n); do
      n=$run-${d##*/}
      if [[ -z "${seen[$n]:-}" ]]; then seen[$n]=1; eval_gpu $d $n & EVALS+=($!); log "evaluating $n"; fi
    done
  done
  if (( $(left) < 260 )); then
    for run in g3 g1; do [[ -f $W/pid-$run ]] && pkill -TERM -f "checkpoint_dir=/tmp/ck-$run " ; done
    log "time: stopped the GPU trainers"; sleep 20
    break
  fi
  kill -0 $GPU_CHAIN 2>/dev/null || { log "gpu chain ended"; break; }
  sleep 5
done
for run in g3 g1; do
  cp /tmp/lg-$run/metrics.jsonl $W/metrics-$run.jsonl 2>/dev/null
  for d in $(ls -d /tmp/ck-$run/step_* 2>/dev/null); do
    n=$run-${d##*/}
    if [[ -z "${seen[$n]:-}" ]]; then seen[$n]=1; eval_gpu $d $n & EVALS+=($!); log "evaluating $n (after training)"; fi
  done
done
for p in "${EVALS[@]}"; do wait $p; done
# whatever CPU-study runs are still going get until END - 30
while (( $(left) > 30 )) && pgrep -f "grpo_trainer (train|evaluate|warm-start)" > /dev/null; do sleep 5; done
pkill -TERM -f "grpo_trainer" 2>/dev/null
kill $GPULOG
log "DONE"
