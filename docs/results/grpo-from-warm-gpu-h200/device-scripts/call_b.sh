#!/usr/bin/env bash
# Call B: reassemble the GGUF, start the orchestrator detached (it outlives this call), follow it.
# $1 = seconds of device time left at the start of this call; $2 = seconds this call may follow.
set -u
source .whl/s/env.sh
T0=$(date +%s)
END=$(( T0 + $1 - 50 ))
cat /tmp/gg/gguf.xz.part-a .whl/b/gguf.xz.part-b > /tmp/gg/model.gguf.xz
python3 -c "
import lzma, shutil
with lzma.open('/tmp/gg/model.gguf.xz') as s, open('/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf', 'wb') as d:
    shutil.copyfileobj(s, d, 1 << 22)
"
echo "sha256 $(sha256sum /tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf | cut -c1-64) expected $(cat .whl/s/gguf.sha)"
mkdir -p /tmp/w && cp -r . /tmp/repo 2>/dev/null; rm -rf /tmp/repo/.whl/a /tmp/repo/.whl/b
echo "orchestrator END=$END ($(( END - T0 ))s from now)"
( cd /tmp/repo && setsid nohup bash .whl/s/orchestrate.sh $END > /tmp/w/orch.out 2>&1 < /dev/null & )
bash .whl/s/monitor.sh $2
