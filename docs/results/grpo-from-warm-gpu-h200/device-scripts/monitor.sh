#!/usr/bin/env bash
# Follow the orchestrator for up to $1 seconds (or until DONE), then copy its small results to $OUT.
set -u
T0=$(date +%s)
while (( $(date +%s) - T0 < $1 )); do
  grep -q "DONE" /tmp/w/orch.log 2>/dev/null && break
  sleep 10
done
cat /tmp/w/orch.log 2>/dev/null
tail -5 /tmp/w/orch.out 2>/dev/null
mkdir -p $OUT/w
cp /tmp/w/*.json /tmp/w/*.log /tmp/w/*.jsonl $OUT/w/ 2>/dev/null
cp /tmp/logs/metrics.jsonl $OUT/w/grpo-metrics.jsonl 2>/dev/null
cp /tmp/warm/warm_start.json $OUT/w/ 2>/dev/null
ls /tmp/ckpt 2>/dev/null | tr '\n' ' '; echo
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob('/tmp/w/eval-*.json'), key=os.path.getmtime):
    try:
        d = json.load(open(f)); print(os.path.basename(f), round(d['accuracy'], 4), d['num_tasks'])
    except Exception as e:
        print(os.path.basename(f), 'unreadable', e)
rows = [json.loads(l) for l in open('/tmp/logs/metrics.jsonl')] if os.path.exists('/tmp/logs/metrics.jsonl') else []
tr = [r for r in rows if r.get('kind') == 'train']
for r in tr[-5:]:
    print('step', r['step'], 'reward', round(r['train/reward'], 3), 'zero_std', r.get('train/frac_reward_zero_std'),
          't', round(r['timing/train/total_step_time'], 1), 'gen', round(r.get('timing/train/generation', 0), 1))
PY
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
