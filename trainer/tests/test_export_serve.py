"""`grpo_trainer export` (an HF model dir with our chat template) and `grpo_trainer serve` (OpenAI API)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from grpo_trainer.export import export_model
from grpo_trainer.model.chat_format import PREFILL

TRAINER_ROOT = Path(__file__).resolve().parents[1]
TOOLS = [{"type": "function", "function": {
    "name": "email_delete_email", "description": "Deletes an email by its ID.",
    "parameters": {"type": "object", "properties": {"email_id": {"type": "string"}}, "required": ["email_id"]}}}]


def _checkpoint_layout(model_dir: Path, root: Path) -> Path:
    """A checkpoint step dir as the trainer writes it (policy/weights + policy/tokenizer)."""
    step = root / "checkpoints" / "step_2"
    weights, tokenizer = step / "policy" / "weights", step / "policy" / "tokenizer"
    weights.mkdir(parents=True)
    tokenizer.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.name in ("config.json", "generation_config.json", "model.safetensors"):
            shutil.copy(f, weights / f.name)
        elif f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(f, tokenizer / f.name)
    (step / "training_info.json").write_text(json.dumps({"total_steps": 2, "val:accuracy": 0.25}))
    return step


def test_export_a_checkpoint_loads_renders_our_tool_format_and_generates(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    step = _checkpoint_layout(tiny_model, tmp_path)
    out = tmp_path / "export"
    result = export_model(step, out)
    assert result["checkpoint"] == {"total_steps": 2, "val:accuracy": 0.25}
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "grpo_export.json"} <= names
    assert not any(n.endswith(".bin") for n in names)

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    messages = [{"role": "system", "content": "You are a workplace assistant."},
                {"role": "user", "content": "Delete email 00000057."}]
    text = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert "- email_delete_email(email_id: string): Deletes an email by its ID." in text
    assert '<tool_call>{"name": "<tool name>", "arguments": {"<argument>": "<value>"}}</tool_call>' in text
    assert text.endswith("<|im_start|>assistant\n")  # no prefill unless asked for
    # Tools without a system message get a system turn of their own.
    bare = tokenizer.apply_chat_template(messages[1:], tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert bare.startswith("<|im_start|>system\nYou can use these tools.")
    # A past call renders in our format.
    history = messages + [{"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "email_delete_email", "arguments": {"email_id": "00000057"}}}]},
        {"role": "tool", "name": "email_delete_email", "content": "Email deleted successfully."}]
    rendered = tokenizer.apply_chat_template(history, tools=TOOLS, tokenize=False)
    assert '<tool_call>{"name": "email_delete_email", "arguments": {"email_id": "00000057"}}</tool_call>' in rendered
    assert "<tool_response>\nEmail deleted successfully.\n</tool_response>" in rendered
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == ids["input_ids"].shape[1] + 4 or tokenizer.eos_token_id in generated[0].tolist()
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_export_refuses_an_existing_dir_and_bakes_the_prefill_on_request(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from grpo_trainer.errors import ModelLoadError

    out = tmp_path / "export"
    export_model(tiny_model, out, prefill_tool_call=True)
    with pytest.raises(ModelLoadError, match="exists"):
        export_model(tiny_model, out)
    text = AutoTokenizer.from_pretrained(out).apply_chat_template(
        [{"role": "user", "content": "hi"}], tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert text.endswith(PREFILL)
    with pytest.raises(ModelLoadError, match="neither a checkpoint"):
        export_model(tmp_path, tmp_path / "nothing")


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def test_serve_speaks_the_openai_api_and_batches_concurrent_requests(tiny_model: Path, tmp_path: Path) -> None:
    ready = tmp_path / "server.json"
    env = {**os.environ, "PYTHONPATH": str(TRAINER_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "grpo_trainer", "serve", "--model", str(tiny_model), "--port", "0",
                             "--model-name", "tiny", "--max-tokens-cap", "6", "--ready-file", str(ready)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (ready.is_file() and ready.read_text().strip()):
            assert proc.poll() is None, "server exited"
            assert time.time() < deadline, "server did not start"
            time.sleep(0.2)
        base = json.loads(ready.read_text())["url"]
        with urllib.request.urlopen(base + "/models", timeout=30) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "tiny"
        results: list[dict] = []
        prompts = ["<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
                   "<|im_start|>user\nDelete email 5 please<|im_end|>\n<|im_start|>assistant\n"]
        threads = [threading.Thread(target=lambda p=p: results.append(
            _post(base + "/completions", {"model": "tiny", "prompt": p, "max_tokens": 4096, "temperature": 0.001})))
            for p in prompts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 2
        for r in results:
            assert r["object"] == "text_completion" and isinstance(r["choices"][0]["text"], str)
            assert r["usage"]["completion_tokens"] <= 6  # the cap, not the 4096 asked for
        chat = _post(base + "/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                                  "tools": TOOLS, "max_tokens": 3})
        assert chat["choices"][0]["message"]["role"] == "assistant"
        assert chat["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")
        with urllib.request.urlopen(base.rsplit("/v1", 1)[0] + "/health", timeout=30) as resp:
            health = json.loads(resp.read())
        assert health["requests"] == 3 and health["batches"] <= 3
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_tool_call_done_ends_after_a_closed_call_unless_another_follows() -> None:
    from grpo_trainer.serve import tool_call_done

    assert not tool_call_done('<tool_call>{"name": "f", "arguments": {}}')
    assert not tool_call_done('<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    assert not tool_call_done('<tool_call>{"name": "f", "arguments": {}}</tool_call>\n')
    assert not tool_call_done('<tool_call>{"name": "f", "arguments": {}}</tool_call>\n<tool')
    assert not tool_call_done('<tool_call>{"name": "f", "arguments": {}}</tool_call>\n<tool_call>{"name"')
    assert tool_call_done('<tool_call>{"name": "f", "arguments": {}}</tool_call>\nThe answer')
    assert not tool_call_done("Plain text without any call")
