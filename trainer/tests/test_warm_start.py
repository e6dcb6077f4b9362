"""The supervised warm start (`python -m grpo_trainer warm-start`): the training text is what a rollout
sees, the loss covers exactly what a rollout generates, and the command is idempotent and resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from grpo_trainer.config.loader import load_config
from grpo_trainer.errors import InvalidDataError
from grpo_trainer.model.chat_format import PREFILL, chat_template, install_chat_format, training_chat_template
from grpo_trainer.training import sft_examples
from grpo_trainer.training import warm_start as ws

from .conftest import CPU_CONFIG, GPU_CONFIG, TRAINER_ROOT, read_failure, run_trainer, trainer_command, trainer_env

SYSTEM = "You are a workplace assistant. Today is 2023-11-30."
TOOLS = [
    {"type": "function", "function": {
        "name": "email_send_email", "description": "Sends an email.",
        "parameters": {"type": "object", "properties": {
            "recipient": {"type": "string", "description": "address"},
            "subject": {"type": "string", "description": "subject"},
            "body": {"type": ["string", "null"], "description": "text"}}, "required": ["recipient", "subject"]}}},
    {"type": "function", "function": {
        "name": "company_directory_find_email_address", "description": "Finds email addresses by name.",
        "parameters": {"type": "object", "properties": {"name": {"type": "string", "description": "name"}}}}},
]


def _call(name: str, arguments: dict | str) -> dict:
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": {"name": name, "arguments": arguments}}]}


def _trace(task_id: int, person: str, subject: str) -> dict:
    address = f"{person.lower()}@atlas.com"
    return {"task_id": task_id, "category": "workplace_assistant_email", "tools": TOOLS, "tool_calls": 2,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Email {person} about {subject}."},
                _call("company_directory_find_email_address", {"name": person}),
                {"role": "tool", "name": "company_directory_find_email_address", "content": f'["{address}"]'},
                # Arguments as JSON text (OpenAI style) must render like a dict through tojson.
                _call("email_send_email", json.dumps({"recipient": address, "subject": subject})),
                {"role": "tool", "name": "email_send_email", "content": "Email sent successfully."},
                {"role": "assistant", "content": "Done."}]}


TRACES = [_trace(1, "Carlos", "the budget"), _trace(2, "Dana", "lunch"), _trace(3, "Lena", "the Q4 plan"),
          _trace(4, "Omar", "onboarding")]


def _write(path: Path, traces: list[dict]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in traces))
    return path


@pytest.fixture()
def traces_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "traces.jsonl", TRACES)


def _cfg(*overrides: str):
    cfg, _ = load_config(CPU_CONFIG, list(overrides), check_paths=False)
    return cfg


# Fast settings for the tiny model: a few steps of 2 traces each.
FAST = ["warm_start.epochs=1", "warm_start.batch_size=2", "warm_start.gradient_accumulation_steps=1",
        "warm_start.save_steps=1", "warm_start.lr=1e-3", "warm_start.max_length=512"]


def test_training_template_renders_the_same_bytes(tiny_model: Path) -> None:
    """Rollouts and evaluation use the plain template; the markers must not change a byte."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    text_and_calls = {"role": "assistant", "content": "Let me look.", "tool_calls": [
        {"type": "function", "function": {"name": "a", "arguments": {"x": "é", "n": [1, 2]}}},
        {"name": "b", "arguments": '{"y": true}'}]}
    conversations = [TRACES[0]["messages"], TRACES[0]["messages"][1:],
                     TRACES[0]["messages"][:2] + [text_and_calls, {"role": "tool", "content": "ok"},
                                                  {"role": "assistant", "content": "All set."}],
                     [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]]
    for prefill in (False, True):
        assert training_chat_template(prefill) != chat_template(prefill)
        for messages in conversations:
            for end in range(1, len(messages) + 1):
                for generation_prompt in (False, True):
                    rendered = []
                    for training in (False, True):
                        install_chat_format(tok, prefill, training=training)
                        rendered.append(tok.apply_chat_template(messages[:end], tools=TOOLS, tokenize=False,
                                                                add_generation_prompt=generation_prompt))
                    assert rendered[0] == rendered[1]


def _rollout_spans(tok, messages: list[dict], prefill: bool) -> tuple[list[int], set[int]]:
    """The full token ids, and the positions a rollout generates: for every assistant turn, the tokens after
    the generation prompt of the messages before it, up to and including its <|im_end|>."""
    install_chat_format(tok, prefill)
    full = tok.apply_chat_template(messages, tools=TOOLS, tokenize=True, return_dict=True)["input_ids"]
    generated: set[int] = set()
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tok.apply_chat_template(messages[:i], tools=TOOLS, tokenize=True, return_dict=True,
                                         add_generation_prompt=True)["input_ids"]
        assert full[:len(prompt)] == prompt, f"turn {i}: the rollout's prompt is not a prefix of the training text"
        end = full.index(tok.eos_token_id, len(prompt))
        generated.update(range(len(prompt), end + 1))
    return full, generated


@pytest.mark.parametrize("prefill", [False, True])
def test_loss_mask_covers_exactly_the_generated_tokens(tiny_model: Path, tmp_path: Path, prefill: bool) -> None:
    cfg = _cfg(*FAST, f"env.workplace_assistant.prefill_tool_call={str(prefill).lower()}")
    from transformers import AutoTokenizer

    tok = install_chat_format(AutoTokenizer.from_pretrained(str(tiny_model)), prefill, training=True)
    rows, stats = sft_examples.prepare_examples([dict(t) for t in TRACES], tok, cfg)
    assert stats["examples"] == len(TRACES) and stats["dropped_too_long"] == 0
    trainer = ws.build_trainer(cfg, rows, tiny_model, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()

    full, generated = _rollout_spans(tok, TRACES[0]["messages"], prefill)
    assert ids == full  # the collated example is the rollout's token sequence
    labelled = {i for i, label in enumerate(labels) if label != -100}
    assert labelled == generated
    assert all(labels[i] == ids[i] for i in labelled)

    decode = tok.decode
    runs, start = [], None
    for i in range(len(ids) + 1):
        if i < len(ids) and i in labelled and start is None:
            start = i
        elif (i == len(ids) or i not in labelled) and start is not None:
            runs.append((start, i))
            start = None
    texts = [decode(ids[a:b]) for a, b in runs]
    opener = "" if prefill else PREFILL
    assert texts == [opener + 'company_directory_find_email_address", "arguments": {"name": "Carlos"}}'
                     "</tool_call><|im_end|>",
                     '<tool_call>{"name": "email_send_email", "arguments": {"recipient": "carlos@atlas.com", '
                     '"subject": "the budget"}}</tool_call><|im_end|>',
                     "Done.<|im_end|>"]
    before_first = decode(ids[:runs[0][0]])
    assert before_first.endswith("<|im_start|>assistant\n" + (PREFILL if prefill else ""))
    masked = decode([ids[i] for i in range(len(ids)) if i not in labelled])
    for text in (SYSTEM, "Email Carlos about the budget.", "<tool_response>", '["carlos@atlas.com"]',
                 "Email sent successfully."):
        assert text in masked


def test_traces_that_cannot_teach_a_rollout_are_dropped_and_counted(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    answer_first = {**TRACES[0], "messages": TRACES[0]["messages"][:2] + [{"role": "assistant", "content": "No."}]}
    long = {**TRACES[1], "messages": [*TRACES[1]["messages"][:1],
                                      {"role": "user", "content": "please " * 600}, *TRACES[1]["messages"][2:]]}
    traces = [dict(t) for t in (answer_first, long, TRACES[2])]
    for prefill, unusable in ((True, 1), (False, 0)):
        cfg = _cfg("warm_start.max_length=512", f"env.workplace_assistant.prefill_tool_call={str(prefill).lower()}")
        tok = install_chat_format(AutoTokenizer.from_pretrained(str(tiny_model)), prefill, training=True)
        rows, stats = sft_examples.prepare_examples(traces, tok, cfg)
        assert stats["dropped_too_long"] == 1
        assert sum(stats["dropped_unusable"].values()) == unusable
        assert len(rows) == 2 - unusable
    cfg = _cfg("warm_start.max_examples=1")
    rows, stats = sft_examples.prepare_examples([dict(t) for t in TRACES], tok, cfg)
    assert stats["examples"] == 1 and stats["available"] == len(TRACES)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TRACES[0]) + "\n{not json\n")
    with pytest.raises(InvalidDataError) as err:
        sft_examples.load_traces(bad)
    assert err.value.line_no == 2


def _warm_start(model: Path, traces: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return run_trainer("warm-start", "--config", str(CPU_CONFIG), "--traces", str(traces), "--model", str(model),
                       "--out", str(out), *FAST, *overrides)


def _summary(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_warm_start_trains_then_reuses_then_retrains_on_change(tiny_model: Path, traces_file: Path,
                                                               tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from grpo_trainer.training.grpo import load_policy

    out = tmp_path / "warm"
    run = _warm_start(tiny_model, traces_file, out)
    first = _summary(run)
    assert "warm-start step 1/2 | loss" in run.stdout and "warm-start step 2/2 | loss" in run.stdout
    assert first["status"] == "ok" and first["reused"] is False
    assert first["examples"] == 4 and first["dropped_too_long"] == 0 and first["steps"] == 2
    saved = json.loads((out / "warm_start.json").read_text())
    for key in ("fingerprint", "base_model", "traces", "examples", "dropped_too_long", "steps", "seconds",
                "final_loss", "settings"):
        assert key in saved
    assert saved["settings"]["batch_size"] == 2 and isinstance(saved["final_loss"], float)
    progress = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"], r["total_steps"]) for r in progress] == [("warm_start", 1, 2), ("warm_start", 2, 2)]
    assert all(isinstance(r["loss"], float) for r in progress)

    # The warmed model loads like the base model: plain transformers, and the trainer's own loader.
    model_dir = out / "model"
    assert AutoModelForCausalLM.from_pretrained(str(model_dir)).config.num_hidden_layers == 2
    policy, tokenizer = load_policy(str(model_dir), torch.float32, prefill_tool_call=True)
    # The saved model carries the plain template (what rollouts render), not the training variant.
    assert (model_dir / "chat_template.jinja").read_text() == chat_template(True)
    assert "endgeneration" not in tokenizer.chat_template
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    assert not torch.equal(policy.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    assert not list((out / "checkpoints").glob("checkpoint-*"))  # the optimizer state went with the final model

    weights_mtime = (model_dir / "model.safetensors").stat().st_mtime_ns
    started = time.time()
    again = _summary(_warm_start(tiny_model, traces_file, out))
    assert again["reused"] is True and again["fingerprint"] == first["fingerprint"]
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == weights_mtime
    assert time.time() - started < 60

    changed = _summary(_warm_start(tiny_model, traces_file, out, "warm_start.lr=5e-4"))
    assert changed["reused"] is False and changed["fingerprint"] != first["fingerprint"]
    _write(traces_file, TRACES[:2])
    fewer = _summary(_warm_start(tiny_model, traces_file, out, "warm_start.lr=5e-4"))
    assert fewer["reused"] is False and fewer["examples"] == 2 and fewer["steps"] == 1
    assert fewer["fingerprint"] not in (first["fingerprint"], changed["fingerprint"])


def test_killed_warm_start_resumes_from_its_checkpoint(tiny_model: Path, traces_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "warm"
    args = ["warm-start", "--config", str(CPU_CONFIG), "--traces", str(traces_file), "--model", str(tiny_model),
            "--out", str(out), *FAST, "warm_start.batch_size=1", "warm_start.epochs=4"]  # 16 steps
    proc = subprocess.Popen(trainer_command(*args), env=trainer_env(), cwd=TRAINER_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while not list((out / "checkpoints").glob("checkpoint-*/trainer_state.json")):
            assert proc.poll() is None, "the warm start ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (out / "warm_start.json").exists()
    killed_at = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*")
                    if (p / "trainer_state.json").is_file())
    result = run_trainer(*args)
    summary = _summary(result)
    assert f"resuming from {out / 'checkpoints'}" in result.stdout
    assert summary["resumed_from_step"] is not None and summary["resumed_from_step"] >= 1
    assert summary["steps"] == 16
    started = [line for line in result.stdout.splitlines() if "training running from step" in line]
    assert started == [f"[warm-start] training running from step {summary['resumed_from_step']} of 16"]
    assert summary["resumed_from_step"] >= killed_at
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 16 and set(range(1, 17)) <= set(steps)


@pytest.mark.parametrize("override, key", [
    ("warm_start.batch_size=0", "warm_start.batch_size"),
    ("warm_start.epochs=0", "warm_start.epochs"),
    ("warm_start.max_examples=0", "warm_start.max_examples"),
    ("warm_start.lr=fast", "warm_start.lr"),
    ("warm_start.bogus=1", "warm_start.bogus"),
])
def test_invalid_warm_start_setting_exits_2_naming_the_key(tiny_model: Path, traces_file: Path, tmp_path: Path,
                                                            override: str, key: str) -> None:
    out = tmp_path / "warm"
    result = _warm_start(tiny_model, traces_file, out, override)
    assert result.returncode == 2 and key in result.stderr
    failure = read_failure(out)
    assert failure["type"] == "InvalidConfig" and key in failure["message"]
    assert not (out / "model").exists()


def test_shipped_configs_enable_the_warm_start() -> None:
    cpu, _ = load_config(CPU_CONFIG, [], check_paths=False)
    gpu, _ = load_config(GPU_CONFIG, [], check_paths=False)
    assert cpu.warm_start.enabled and gpu.warm_start.enabled
    assert gpu.warm_start.trainable_layers is None and gpu.policy.precision in ("auto", "bfloat16")
    assert cpu.warm_start.max_length >= 512 and cpu.warm_start.save_steps >= 1


@pytest.mark.parametrize(("flags", "cuda", "setting", "expected"), [
    ("fpu avx512f avx512_bf16 avx512_vnni", False, "auto", "bfloat16"),
    ("fpu avx512f amx_tile amx_bf16", False, "auto", "bfloat16"),
    ("fpu avx2 avx512f", False, "auto", "float32"),  # bf16 would be emulated: slower than fp32
    ("fpu avx2", True, "auto", "bfloat16"),
    ("fpu avx512_bf16", False, "float32", "float32"),  # an explicit setting wins
])
def test_warm_start_precision_follows_what_the_hardware_computes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 flags: str, cuda: bool, setting: str,
                                                                 expected: str) -> None:
    import torch

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    monkeypatch.setattr(ws, "CPUINFO", cpuinfo)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cfg, _ = load_config(CPU_CONFIG, [f"policy.precision={setting}"], check_paths=False)
    assert ws.resolved_precision(cfg) == expected
    assert ws.cpu_computes_bf16() == ("bf16" in flags)
    monkeypatch.setattr(ws, "CPUINFO", tmp_path / "absent")  # not Linux: no flags to read, so fp32
    assert not ws.cpu_computes_bf16()
