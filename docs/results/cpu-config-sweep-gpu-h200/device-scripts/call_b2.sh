set -u
source .whl/s/env.sh
cat /tmp/gg/gguf.xz.part-a .whl/b/gguf.xz.part-b > /tmp/gg/model.gguf.xz
python3 -c "
import lzma, shutil
with lzma.open('/tmp/gg/model.gguf.xz') as s, open('/tmp/gg/SmolLM2-135M-Instruct.Q4_1.gguf', 'wb') as d:
    shutil.copyfileobj(s, d, 1 << 22)
"
mkdir -p /tmp/w && cp -r . /tmp/repo 2>/dev/null; rm -rf /tmp/repo/.whl/a /tmp/repo/.whl/b
( cd /tmp/repo && setsid nohup bash .whl/s/orch2.sh > /tmp/w/orch.out 2>&1 < /dev/null & )
T0=$(date +%s)
while (( $(date +%s) - T0 < $1 )); do grep -q DONE /tmp/w/orch.log 2>/dev/null && break; sleep 5; done
cat /tmp/w/orch.log; mkdir -p $OUT; tar -C /tmp -cJf $OUT/w.tar.xz w
