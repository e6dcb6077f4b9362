#!/usr/bin/env bash
# Call A: unpack packages, data + traces, first half of the GGUF; versions; config check.
set -u
source .whl/s/env.sh
T0=$(date +%s)
mkdir -p /tmp/site /tmp/pk /tmp/gg
python3 -c "
import tarfile
tarfile.open('.whl/a/site.tar.xz', 'r:xz').extractall('/tmp/site', filter='tar')
tarfile.open('.whl/a/pack.tar.xz', 'r:xz').extractall('/tmp/pk', filter='tar')
"
cp .whl/a/gguf.xz.part-a /tmp/gg/
echo "unpacked in $(( $(date +%s) - T0 ))s"; ls /tmp/pk; wc -l /tmp/pk/traces-*.jsonl
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
python3 -c "import sys, torch, transformers, trl, accelerate, datasets, numpy; print(sys.version.split()[0], torch.__version__, transformers.__version__, trl.__version__, accelerate.__version__, datasets.__version__, numpy.__version__, torch.cuda.get_device_name(0))"
python3 -m grpo_trainer check-config --config configs/builtin-gpu.yaml 2>&1 | tail -3
df -h /tmp | tail -1; nproc; free -g | head -2
echo "call A done in $(( $(date +%s) - T0 ))s"
