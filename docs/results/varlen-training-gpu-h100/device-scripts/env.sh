# Sourced by every device script: NCCL/NVLink settings the device README asks for, offline hub, packages.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
export PYTHONPATH=/tmp/site:$PWD/trainer
export TOKENIZERS_PARALLELISM=false
