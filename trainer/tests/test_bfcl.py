"""BFCL v3 through bfcl-eval: our reply format on bfcl's side, and end-to-end runs of
`python -m grpo_trainer bfcl` in the BFCL environment (trainer/requirements-bfcl.lock).

The end-to-end tests need that environment: GRPO_BFCL_PYTHON, or <state>/envs/bfcl/bin/python
(the pipeline builds it on a run's first BFCL stage; `npm test` builds it first). One serves a
tiny model with our server; the other answers with a scripted OpenAI-compatible server that
replies with bfcl's own ground truth (or a wrong function), which bfcl's checkers must score 1 (0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from grpo_trainer.bfcl.format import as_tools, extract_calls

TRAINER_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = TRAINER_ROOT.parent


def bfcl_python() -> str | None:
    state = Path(os.environ.get("GRPO_STATE_DIR") or REPO_ROOT / ".grpo")
    for candidate in (os.environ.get("GRPO_BFCL_PYTHON"), str(state / "envs" / "bfcl" / "bin" / "python")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture
def bfcl_env() -> str:
    """The BFCL environment (`npm test` builds it through `grpo setup`). Missing, the test fails:
    a skipped test would count as passing without proving anything."""
    python = bfcl_python()
    if python is None:
        pytest.fail("no BFCL environment: run `npm run grpo -- setup` (builds <state>/envs/bfcl) "
                    "or set GRPO_BFCL_PYTHON")
    return python


needs_bfcl = pytest.mark.usefixtures("bfcl_env")


def test_extract_calls_reads_our_tool_call_blocks() -> None:
    text = ('<tool_call>{"name": "math.factorial", "arguments": {"number": 5}}</tool_call>\n'
            '<tool_call>{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}</tool_call>')
    assert extract_calls(text) == [{"math.factorial": {"number": 5}},
                                   {"spotify.play": {"artist": "Taylor Swift", "duration": 20}}]
    assert extract_calls("I cannot help with that.") == []
    # cut off after a complete JSON object by the token budget: still read
    assert extract_calls('<tool_call>{"name": "f", "arguments": {"x": 1}}') == [{"f": {"x": 1}}]
    assert extract_calls('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>') == [{"f": {"x": 1}}]
    for bad in ('<tool_call>{"name": "f", "arguments": {"x": </tool_call>', '<tool_call>{"arguments": {}}</tool_call>',
                '<tool_call>{"name": "f", "arguments": [1]}</tool_call>'):
        with pytest.raises(ValueError):
            extract_calls(bad)


def test_bfcl_functions_render_in_our_chat_template(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    fn = {"name": "calculate_triangle_area", "description": "Calculate the area of a triangle.",
          "parameters": {"type": "dict", "properties": {"base": {"type": "integer", "description": "b"},
                                                        "height": {"type": "integer"}, "unit": {"description": "u"}},
                         "required": ["base", "height"]}}
    text = tok.apply_chat_template([{"role": "user", "content": "Area of base 10, height 5?"}], tools=as_tools([fn]),
                                   tokenize=False, add_generation_prompt=True)
    assert "- calculate_triangle_area(base: integer, height: integer, unit?: string): Calculate the area" in text
    assert "type" not in fn["parameters"]["properties"]["unit"]  # the input is left untouched


def _run_bfcl(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TRAINER_ROOT)}
    return subprocess.run([bfcl_python(), "-m", "grpo_trainer", "bfcl", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900)


@needs_bfcl
def test_bfcl_end_to_end_serving_a_tiny_model(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "bfcl"
    run = _run_bfcl(["--model", str(tiny_model), "--out", str(out), "--trainer-python", sys.executable,
                     "--limit", "1", "--max-tokens", "8", "--prefill-tool-call", "--label", "test"], tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "bfcl.json").read_text())
    assert (result["package"], result["version"], result["data_version"]) == ("bfcl-eval", "2025.8.5", "BFCL_v3")
    assert list(result["categories"]) == ["simple", "multiple", "parallel", "multi_turn_base"]
    for cat, v in result["categories"].items():
        assert v["total"] == 1 and len(v["ids"]) == 1 and Path(v["score_file"]).is_file(), cat
    assert result["settings"]["prefill_tool_call"] is True
    assert result["server"]["stats"]["requests"] >= 4


class _Scripted(BaseHTTPRequestHandler):
    """OpenAI completions that answer each BFCL `simple` question with bfcl's ground truth."""

    answers: list[tuple[str, dict[str, Any]]] = []
    wrong = False

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._send({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        call = next(call for question, call in self.answers if question in prompt)
        name = "no_such_function" if self.wrong else next(iter(call))
        text = "<tool_call>" + json.dumps({"name": name, "arguments": call[next(iter(call))]}) + "</tool_call>"
        self._send({"id": "x", "object": "text_completion", "model": "scripted",
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


def _ground_truth_answers() -> list[tuple[str, dict[str, Any]]]:
    """(question, call) for bfcl's `simple` entries, built from bfcl's possible answers (first option each)."""
    code = ("import json; from bfcl_eval.constants.eval_config import PROMPT_PATH, POSSIBLE_ANSWER_PATH as A; "
            "print(json.dumps([str(PROMPT_PATH / 'BFCL_v3_simple.json'), str(A / 'BFCL_v3_simple.json')]))")
    env = {**os.environ, "BFCL_PROJECT_ROOT": "/tmp"}
    listed = subprocess.run([bfcl_python(), "-c", code], capture_output=True, text=True, check=True, env=env)
    questions_file, answers_file = json.loads(listed.stdout)
    questions = {e["id"]: e["question"][0][-1]["content"] for e in map(json.loads, open(questions_file))}
    out = []
    for entry in map(json.loads, open(answers_file)):
        (name, params), = entry["ground_truth"][0].items()
        args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
        out.append((questions[entry["id"]], {name: args}))
    return out


@needs_bfcl
@pytest.mark.parametrize("wrong", [False, True])
def test_bfcl_checkers_score_ground_truth_replies_one_and_wrong_ones_zero(tiny_model: Path, tmp_path: Path,
                                                                         wrong: bool) -> None:
    handler = type("Scripted", (_Scripted,), {"answers": _ground_truth_answers(), "wrong": wrong})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "bfcl"
        run = _run_bfcl(["--model", str(tiny_model), "--out", str(out), "--categories", "simple", "--limit", "5",
                         "--server-url", f"http://127.0.0.1:{server.server_address[1]}"], tmp_path)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        simple = json.loads((out / "bfcl.json").read_text())["categories"]["simple"]
        assert simple["total"] == 5
        assert simple["accuracy"] == (0.0 if wrong else 1.0), simple
    finally:
        server.shutdown()
