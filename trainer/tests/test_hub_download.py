"""Hub downloads through the Hugging Face cache, against the Hub TEST DOUBLE
(test/doubles/hub-server-TEST-DOUBLE.py serves the tiny model under any repo id).

* a transfer cut off mid-file resumes where it stopped (a Range request; the
  result is byte-identical), and `model.revision` reaches the Hub;
* a download attempt that fails (429 past the client's retries) keeps the files
  it finished: the next attempt fetches only the rest;
* a second prepare with the same HF_HOME downloads nothing, and works offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, trainer_command, trainer_env

DOUBLE = REPO_ROOT / "test" / "doubles" / "hub-server-TEST-DOUBLE.py"
REPO_ID = "test-org/tiny-model"
CACHED = f"hub/models--{REPO_ID.replace('/', '--')}"  # the repo's folder in the cache, under HF_HOME
V1_COMMIT = hashlib.sha1(b"v1.0").hexdigest()  # the double's commit of revision v1.0


class Hub:
    def __init__(self, tmp: Path, model_dir: Path, *knobs: str) -> None:
        self.log = tmp / "hub.jsonl"
        port_file = tmp / "hub.port"
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, str(DOUBLE), "--model-dir", str(model_dir), "--port", "0",
                                      "--port-file", str(port_file), "--log", str(self.log), *knobs])
        for _ in range(100):
            if port_file.exists() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def hub_model(tiny_model: Path, tmp_path: Path) -> Path:
    """What the double serves: the tiny model's files (not our manifest)."""
    served = tmp_path / "served"
    shutil.copytree(tiny_model, served, ignore=shutil.ignore_patterns("grpo_model.json"))
    return served


@contextmanager
def _hub(tmp_path: Path, served: Path, *knobs: str) -> Iterator[Hub]:
    hub = Hub(tmp_path, served, *knobs)
    try:
        yield hub
    finally:
        hub.stop()


def prepare(out: Path, hf_home: Path, endpoint: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    env = trainer_env()
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_HUB_CACHE", None)
    env.update({"HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1"})
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    else:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(trainer_command("prepare-model", "--out", str(out), "--source", f"hub:{REPO_ID}", *extra),
                          env=env, capture_output=True, text=True, timeout=300)


def file_gets(requests: list[dict], name: str | None = None) -> list[dict]:
    return [r for r in requests if r["method"] == "GET" and "/resolve/" in r["path"]
            and (name is None or r["path"].endswith("/" + name))]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_interrupted_download_resumes_and_the_cache_is_reused(hub_model: Path, tmp_path: Path) -> None:
    weights = hub_model / "model.safetensors"
    size = weights.stat().st_size
    hf_home = tmp_path / "hf"
    with _hub(tmp_path, hub_model, "--partial-once", "model.safetensors") as hub:
        out = tmp_path / "models" / "tiny@v1.0"
        r = prepare(out, hf_home, hub.endpoint, "--revision", "v1.0")
        assert r.returncode == 0, r.stdout + r.stderr
        requests = hub.requests()

        # The revision reached the Hub; files were fetched at the commit it resolved to.
        assert any(q["path"] == f"/api/models/{REPO_ID}/revision/v1.0" for q in requests), requests
        gets = file_gets(requests, "model.safetensors")
        assert [g["status"] for g in gets] == [200, 206], gets
        cut, resumed = gets
        assert cut["bytes"] == size // 2  # the double closed the connection half-way
        start = int(resumed["range"].removeprefix("bytes=").rstrip("-"))
        assert 0 < start <= cut["bytes"]
        assert resumed["bytes"] == size - start < size  # the second transfer only fetched the rest
        assert f"/resolve/{V1_COMMIT}/" in resumed["path"]

        # Byte-identical, linked from the standard cache under HF_HOME/hub.
        linked = out / "model.safetensors"
        assert linked.is_symlink() and sha(linked) == sha(weights)
        assert linked.resolve().is_relative_to(hf_home / CACHED / "blobs")
        manifest = json.loads((out / "grpo_model.json").read_text())
        assert manifest["revision"] == "v1.0" and manifest["commit"] == V1_COMMIT
        printed = json.loads(r.stdout.strip().splitlines()[-1])
        assert printed["fingerprint"] == manifest["fingerprint"] and printed["model_dir"] == str(out)
        # The tokenizer got our chat format in our copy; the cache's file is untouched.
        cached_tok = hf_home / CACHED / "snapshots" / V1_COMMIT / "tokenizer_config.json"
        assert not (out / "tokenizer_config.json").is_symlink()
        assert sha(cached_tok) == sha(hub_model / "tokenizer_config.json")

        # The same HF_HOME again (another model dir): nothing is downloaded.
        before = len(requests)
        r = prepare(tmp_path / "models" / "again", hf_home, hub.endpoint, "--revision", "v1.0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert file_gets(hub.requests()[before:]) == []
        assert json.loads(r.stdout.strip().splitlines()[-1])["fingerprint"] == manifest["fingerprint"]

    # Offline (the rate-limit policy's HF_HUB_OFFLINE=1), the Hub gone: the cache answers.
    r = prepare(tmp_path / "models" / "offline", hf_home, None, "--revision", "v1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    # The commit a revision resolves to is part of the model's identity: main is another fingerprint.
    with _hub(tmp_path, hub_model) as hub:
        r = prepare(tmp_path / "models" / "main", hf_home, hub.endpoint)
        assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["fingerprint"] != manifest["fingerprint"]


def test_a_failed_attempt_keeps_what_it_finished(hub_model: Path, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    out = tmp_path / "models" / "tiny"
    # tokenizer.json answers 429 more often than the client retries: the first attempt fails.
    with _hub(tmp_path, hub_model, "--rate-limit-file", "tokenizer.json", "--rate-limit-count", "6") as hub:
        first = prepare(out, hf_home, hub.endpoint)
        assert first.returncode != 0
        failure = json.loads((out.parent / "failure.json").read_text())
        assert failure["type"] == "RateLimited", failure
        assert not out.exists() and not list(out.parent.glob("*.tmp-*"))
        blobs = hf_home / CACHED / "blobs"
        assert any(b.stat().st_size == (hub_model / "model.safetensors").stat().st_size for b in blobs.iterdir())
        before = len(hub.requests())

        second = prepare(out, hf_home, hub.endpoint)
        assert second.returncode == 0, second.stdout + second.stderr
        fetched = {g["path"].rsplit("/", 1)[1] for g in file_gets(hub.requests()[before:]) if g["status"] == 200}
        assert fetched == {"tokenizer.json"}  # the weights came from the first attempt
        assert sha(out / "model.safetensors") == sha(hub_model / "model.safetensors")


def test_a_cleaned_cache_prepares_the_model_again(hub_model: Path, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    out = tmp_path / "models" / "tiny"
    with _hub(tmp_path, hub_model) as hub:
        assert prepare(out, hf_home, hub.endpoint).returncode == 0
        shutil.rmtree(hf_home)  # e.g. `hf cache delete`
        r = prepare(out, hf_home, hub.endpoint)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "preparing it again" in r.stdout
        assert sha(out / "model.safetensors") == sha(hub_model / "model.safetensors")


def test_revision_needs_a_hub_source(tmp_path: Path) -> None:
    from grpo_trainer.errors import ModelLoadError
    from grpo_trainer.model.prepare import prepare_model

    with pytest.raises(ModelLoadError, match="hub:<repo_id>"):
        prepare_model(tmp_path / "m", "tiny-random", revision="v1")
    assert not os.path.exists(tmp_path / "m")
