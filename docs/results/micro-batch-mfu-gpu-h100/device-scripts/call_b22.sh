#!/usr/bin/env bash
# Call B: reassemble the GGUF, start orch19 detached, follow it. $1 = seconds of device time left; $2 = seconds to follow.
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
mkdir -p /tmp/w && cp -r . /tmp/repo 2>/dev/null; rm -rf /tmp/repo/.whl/a /tmp/repo/.whl/b
echo "orchestrator END=$END ($(( END - T0 ))s from now)"
( cd /tmp/repo && setsid nohup bash .whl/s/orch22.sh $END > /tmp/w/orch.out 2>&1 < /dev/null & )
bash .whl/s/monitor4.sh $2
