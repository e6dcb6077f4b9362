#!/usr/bin/env bash
# Fifth session, issue #12, both configs in one device session.
# GPU config: warm start as shipped (517 traces), then two GRPO runs from it sharing the GPU, checkpoints every
# 15 steps, each evaluated on all 138 validation tasks:
#   R1-ship: as shipped (lr 1e-5, shaped reward, temperature 1.0): orch8's G-ship again, run longer
#   R2-t07:  the same with rollouts sampled at temperature 0.7 (evaluation stays greedy)
# CPU config (fp32, eager decoding, as the 2-core CPU runs it; warm start in bf16 autocast on CUDA), GRPO from
# the pass-rate pool with full rollouts, seeds 42/7/11/23, every run logging each rollout's reward:
#   V0: as shipped (1 task x 4 rollouts per step, 12 steps: 3 visits per pooled task)
#   V1: 2 tasks x 4 rollouts per step, 6 epochs (12 steps: 6 visits per pooled task)
#   V3: 1 task x 8 rollouts per step (12 steps: 3 visits of 8)
set -u
END=$1
source .whl/s/env.sh
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True OMP_NUM_THREADS=2
W=/tmp/w; VAL=/tmp/pk/wpdata/validation.jsonl; TRAIN=/tmp/pk/wpdata/train.jsonl
GCFG=configs/builtin-gpu.yaml; CCFG=configs/builtin-cpu.yaml
CPU_LIKE="policy.precision=float32 policy.generation.compiled_static_cache=false"
T0=$(date +%s)
log() { echo "[orch $(date +%T) +$(( $(date +%s) - T0 ))s left=$(( END - $(date +%s) ))s] $*" >> $W/orch.log; }
gpu_log() { while true; do echo "$(date +%T) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader) load $(cut -d' ' -f1 /proc/loadavg)" >> $W/gpu.log; sleep 15; done; }
acc() { python3 -c "import json;print(round(json.load(open('$1'))['accuracy'],4))" 2>/dev/null; }
eval_gpu() {
  (( $(date +%s) > END - 60 )) && { log "skip eval-$2 (time)"; return; }
  local s=$(date +%s)
  python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --out $W/eval-$2.json --config $GCFG \
    grpo.val_batch_size=138 > $W/eval-$2.log 2>&1
  log "eval-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/eval-$2.json)"
}
eval_cpu() {
  (( $(date +%s) > END - 40 )) && { log "skip cev-$2 (time)"; return; }
  local s=$(date +%s)
  nice -n 10 python3 -m grpo_trainer evaluate --model $1 --tasks $VAL --limit 48 --out $W/cev-$2.json --config $CCFG \
    $CPU_LIKE grpo.val_batch_size=48 > $W/cev-$2.log 2>&1
  log "cev-$2 rc=$? $(( $(date +%s) - s ))s acc=$(acc $W/cev-$2.json)"
}
warm_gpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $GCFG --traces /tmp/pk/traces-gpu.jsonl --model /tmp/smollm2 --out /tmp/warm-F \
    warm_start.batch_size=8 warm_start.gradient_accumulation_steps=2 > $W/warm-F.log 2>&1
  log "warm-F rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/warm-F/warm_start.json $W/warm-F.json 2>/dev/null
}
warm_cpu() {
  local s=$(date +%s)
  python3 -m grpo_trainer warm-start --config $CCFG --traces /tmp/pk/traces-cpu.jsonl --model /tmp/smollm2 \
    --out /tmp/cw-wb policy.precision=bfloat16 > $W/cwarm-wb.log 2>&1
  log "warm wb rc=$? $(( $(date +%s) - s ))s"
  cp /tmp/cw-wb/warm_start.json $W/cwarm-wb.json 2>/dev/null
}
grpo_gpu() {  # NAME [overrides]
  local n=$1; shift
  local s=$(date +%s)
  python3 -m grpo_trainer train --config $GCFG policy.model_name=/tmp/warm-F/model \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$n logger.log_dir=/tmp/lg-$n grpo.max_num_steps=90 grpo.max_num_epochs=100 \
    policy.activation_checkpointing=true grpo.val_batch_size=128 \
    grpo.val_at_start=false grpo.val_period=100000 grpo.val_at_end=false \
    checkpointing.save_period=15 checkpointing.keep_top_k=100 checkpointing.save_optimizer=false "$@" > $W/train-$n.log 2>&1
  log "grpo $n rc=$? $(( $(date +%s) - s ))s"
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
    cp /tmp/lg-$n/metrics.jsonl $W/metrics-$n.jsonl 2>/dev/null
    (( ended )) && break
    (( $(date +%s) > END )) && break
    sleep 10
  done
}
run_gpu() { grpo_gpu "$@" & watch_evals $1; wait; }
grpo_cpu() {  # NAME [overrides]
  local name=$1; shift
  local s=$(date +%s)
  nice -n 10 python3 -m grpo_trainer train --config $CCFG policy.model_name=/tmp/cw-wb/model $CPU_LIKE \
    data.train.data_path=$TRAIN data.validation.data_path=$VAL \
    checkpointing.checkpoint_dir=/tmp/ck-$name logger.log_dir=/tmp/lg-$name "$@" > $W/train-$name.log 2>&1
  log "grpo $name rc=$? $(( $(date +%s) - s ))s $(grep -o 'training pool .*probed in [0-9]*s' $W/train-$name.log)"
  cp /tmp/lg-$name/metrics.jsonl $W/metrics-$name.jsonl 2>/dev/null
  cp /tmp/ck-$name/training_pool.json $W/pool-$name.json 2>/dev/null
  for d in /tmp/ck-$name/step_*; do [[ -d $d ]] && eval_cpu $d $name-${d##*/}; done
}
cpu_study() {
  eval_cpu /tmp/cw-wb/model warm-wb &
  for seed in 42 7 11 23; do
    grpo_cpu V0-s$seed grpo.seed=$seed &
    grpo_cpu V1-s$seed grpo.seed=$seed grpo.num_prompts_per_step=2 grpo.max_num_epochs=6 &
    grpo_cpu V3-s$seed grpo.seed=$seed grpo.num_generations_per_prompt=8 &
  done
  wait
  log "cpu study done"
}
gpu_log & GPULOG=$!
log "start END=$END nproc=$(nproc)"
s=$(date +%s)
python3 -m grpo_trainer prepare-model --out /tmp/smollm2 --source gguf:/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf > $W/prepare.log 2>&1
log "prepare-model rc=$? $(( $(date +%s) - s ))s"
warm_cpu & warm_gpu; wait
eval_gpu /tmp/warm-F/model warm-F &
PIDS=""
run_gpu R1-ship & PIDS="$PIDS $!"
run_gpu R2-t07 policy.generation.temperature=0.7 & PIDS="$PIDS $!"
cpu_study & PIDS="$PIDS $!"
wait $PIDS
sleep 5; kill $GPULOG
log "DONE"
