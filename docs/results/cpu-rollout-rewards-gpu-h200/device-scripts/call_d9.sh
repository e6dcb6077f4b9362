#!/usr/bin/env bash
# orch9 stalled after the warm starts (its bare `wait` also waited on the GPU logger); run the CPU study alone.
set -u
pkill -f orch9.sh; sleep 1
T0=$(date +%s); END=$(( T0 + $1 ))
rm -rf /tmp/repo && cp -r . /tmp/repo 2>/dev/null
( cd /tmp/repo && setsid nohup bash .whl/s/orch9b.sh $END > /tmp/w/orch.out 2>&1 < /dev/null & )
bash .whl/s/monitor4.sh $2
