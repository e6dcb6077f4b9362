# Sourced by the pipeline-on-GPU scripts: NCCL/NVLink settings the device README asks for, offline hub.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export TOKENIZERS_PARALLELISM=false GRPO_STATE_DIR=/tmp/gstate
[ -x /tmp/nodebin/node ] && export PATH=/tmp/nodebin:$PATH
W=/tmp/w; mkdir -p $W
