#!/usr/bin/env bash
# Follow the orchestrator for up to $1 seconds (or until DONE), then pack its small results into $OUT.
set -u
T0=$(date +%s)
while (( $(date +%s) - T0 < $1 )); do
  grep -q "DONE" /tmp/w/orch.log 2>/dev/null && break
  sleep 10
done
cat /tmp/w/orch.log 2>/dev/null
tail -3 /tmp/w/orch.out 2>/dev/null
for r in g3 g1; do cp /tmp/lg-$r/metrics.jsonl /tmp/w/metrics-$r.jsonl 2>/dev/null; done
mkdir -p $OUT && tar -C /tmp -cJf $OUT/w.tar.xz w
python3 - <<'PY'
import json, glob, os
for r in ("g3", "g1"):
    f = f"/tmp/lg-{r}/metrics.jsonl"
    if not os.path.exists(f):
        continue
    tr = [json.loads(l) for l in open(f)]
    tr = [x for x in tr if x.get("kind") == "train"]
    for x in tr[-3:]:
        print(r, "step", x["step"], "reward", round(x["train/reward"], 3), "solved", x.get("train/rewards/task_solved/mean"),
              "t", round(x["timing/train/total_step_time"], 1))
PY
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
