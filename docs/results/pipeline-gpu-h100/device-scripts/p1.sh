#!/usr/bin/env bash
# Stage 1 of the pipeline on a GPU: npm packages (production only, linux-x64) and the temporal CLI; what the machine has.
set -u; source .whl/s/p_env.sh; T0=$(date +%s)
mkdir -p /tmp/g /tmp/gstate/tools/venv/bin
tar xJf .whl/p1/nm.tar.xz -C /tmp/g && xz -dc .whl/p1/temporal.xz > /tmp/gstate/tools/venv/bin/temporal && chmod +x /tmp/gstate/tools/venv/bin/temporal
/tmp/gstate/tools/venv/bin/temporal --version
echo "node: $(command -v node) $(node --version 2>&1)"; python3 --version; nproc; free -g | head -2; df -h /tmp | tail -1
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
python3 -c "
import importlib
for m in ('torch','pandas','pyarrow','tensorboard','psutil','aiohttp','grpc','numpy','datasets','accelerate'):
    try: mod=importlib.import_module(m); print(m, getattr(mod,'__version__','?'))
    except Exception as e: print(m, 'MISSING', e)
"
echo "stage 1 done in $(( $(date +%s) - T0 ))s"
