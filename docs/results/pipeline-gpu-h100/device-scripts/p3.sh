#!/usr/bin/env bash
# Stage 3: the trainer's Python packages (transformers, TRL, ...) into /tmp/site; the GGUF's first half.
set -u; source .whl/s/p_env.sh; T0=$(date +%s)
mkdir -p /tmp/gg && python3 -c "
import tarfile; tarfile.open('.whl/p3/site.tar.xz', 'r:xz').extractall('/tmp/site', filter='tar')" && cp .whl/p3/gguf.xz.part-a /tmp/gg/
PYTHONPATH=/tmp/site python3 -c "import ray, ray.train.torch, transformers, trl; print('ray', ray.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
echo "stage 3 done in $(( $(date +%s) - T0 ))s"
