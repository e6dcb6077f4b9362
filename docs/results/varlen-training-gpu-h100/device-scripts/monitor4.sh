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
mkdir -p $OUT && tar -C /tmp -cJf $OUT/w.tar.xz w
