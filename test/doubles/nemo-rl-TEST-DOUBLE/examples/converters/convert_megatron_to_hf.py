"""TEST DOUBLE of NVIDIA NeMo RL's examples/converters/convert_megatron_to_hf.py (NOT NeMo RL).

Part of grpo-pipeline's NeMo RL test double (see ../../README.md). Same command line as the real
converter (/work/shared/research/nemo-rl.md section 9):

    uv run [--extra mcore] python examples/converters/convert_megatron_to_hf.py \
        --config <ckpt>/step_N/config.yaml \
        --megatron-ckpt-path <ckpt>/step_N/policy/weights/iter_0000000 \
        --hf-ckpt-path <out> [--hf-model-name <repo/name>] [--no-strict]

Like the real one it reads policy.model_name (or --hf-model-name) and policy.tokenizer.name from
the checkpoint's config.yaml, and refuses an existing output directory (FileExistsError). Instead
of exporting weights it writes a small HF-looking directory: config.json (with a
`nemo_rl_test_double` block naming the source step, the base model and the GRPO steps trained,
which the double's run script reads when this directory is used as policy.model_name),
generation_config.json, an empty but valid model.safetensors and tokenizer files (copied from
<step>/policy/tokenizer when present).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from pathlib import Path

import yaml


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Convert Torch DCP checkpoint to HF checkpoint")
    parser.add_argument("--config", type=str, default=None, help="Path to config.yaml file in the checkpoint directory")
    parser.add_argument("--hf-model-name", type=str, default=None, help="HuggingFace model name override")
    parser.add_argument("--megatron-ckpt-path", type=str, default=None, help="Path to Megatron checkpoint")
    parser.add_argument("--hf-ckpt-path", type=str, default=None, help="Path to save HF checkpoint")
    parser.add_argument("--no-strict", action="store_true", default=False,
                        help="Save partial shards even when some tensors are missing (e.g. frozen modules)")
    return parser.parse_args()


def source_state(megatron_path: Path, model_name: str) -> dict:
    """What the double's run script recorded in the Megatron iteration dir when it saved."""
    state_file = megatron_path / "test_double_state.json"
    if state_file.is_file():
        return json.loads(state_file.read_text())
    if not megatron_path.exists():
        raise FileNotFoundError(f"Megatron checkpoint not found: {megatron_path}")
    match = re.search(r"step_(\d+)", str(megatron_path))
    step = int(match.group(1)) if match else 0
    return {"base_model": model_name, "trained_steps": step, "step": step}


def main() -> None:
    args = parse_args()
    with open(args.config) as f:
        config = yaml.safe_load(f)
    model_name = args.hf_model_name if args.hf_model_name else config["policy"]["model_name"]
    tokenizer_name = config["policy"]["tokenizer"]["name"]
    output = Path(args.hf_ckpt_path)
    if os.path.exists(output):
        raise FileExistsError(
            f"HF checkpoint already exists at {output}. Delete it to run or set overwrite=True."
        )
    megatron_path = Path(args.megatron_ckpt_path)
    state = source_state(megatron_path, model_name)
    print(f"Loading Megatron checkpoint from {megatron_path}", flush=True)

    output.mkdir(parents=True)
    (output / "config.json").write_text(json.dumps({
        "architectures": ["NemotronHForCausalLM"],
        "model_type": "nemotron_h",
        "_name_or_path": model_name,
        "torch_dtype": "bfloat16",
        "nemo_rl_test_double": {
            "note": "written by the nemo-rl TEST DOUBLE converter; no weights",
            "source_step": state.get("step"),
            "base_model": state.get("base_model", model_name),
            "trained_steps": state.get("trained_steps", state.get("step", 0)),
            "megatron_ckpt_path": str(megatron_path.resolve()),
            "source_config": str(Path(args.config).resolve()),
            "tokenizer_name": tokenizer_name,
            "strict": not args.no_strict,
        },
    }, indent=2))
    (output / "generation_config.json").write_text(json.dumps({"_from_model_config": True, "eos_token_id": 12}))
    header = b"{}"
    (output / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    tokenizer_dir = megatron_path.parent.parent / "tokenizer"
    copied = False
    if tokenizer_dir.is_dir():
        for item in tokenizer_dir.iterdir():
            if item.is_file():
                shutil.copy2(item, output / item.name)
                copied = True
    if not copied:
        (output / "tokenizer_config.json").write_text(json.dumps({"name_or_path": tokenizer_name}))
        (output / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    print(f"Saved HF checkpoint to {output}", flush=True)


if __name__ == "__main__":
    main()
