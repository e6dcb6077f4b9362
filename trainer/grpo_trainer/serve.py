"""A small OpenAI-compatible HTTP server for one model, with transformers on CPU or GPU.

It exists so tools that speak the OpenAI API to a local model (BFCL's
``bfcl-eval`` with ``--skip-server-setup``, simple clients) can run where vLLM
cannot, such as this project's CPU machines. Endpoints:

* ``GET /v1/models`` and ``GET /health``;
* ``POST /v1/completions``: ``prompt`` (a string, rendered by the client),
  ``max_tokens``, ``temperature``, ``top_p``, ``stop``; answers ``choices[0].text``
  and ``usage``. This is the route BFCL's local-model handlers use;
* ``POST /v1/chat/completions``: ``messages`` and optional ``tools`` rendered
  with the model's chat template; the reply's ``<tool_call>`` blocks come back
  as ``tool_calls`` (our format, parsed by the tokenizer's response parser).

Requests are served by one generation thread that batches waiting requests
of the same sampling mode and similar prompt length (left padding), so
concurrent clients (BFCL sends all entries at once) share forward passes
without padding short prompts to the longest. ``max_tokens`` is capped by
``--max-tokens-cap``: BFCL asks for up to 4096 new tokens per request, which a
CPU cannot afford. A temperature at or below ``greedy_below`` (0.01, BFCL
uses 0.001) decodes greedily, so results are deterministic.

``--stop-after-tool-call`` ends a completion once a ``</tool_call>`` has closed
and the model goes on with anything but another ``<tool_call>``, and cuts that
trailing text like a stop sequence. Parsers of our format read only the
``<tool_call>`` blocks, so scores do not change; the CPU time does (a small model
rambles on after its call until the token cap).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GREEDY_BELOW = 0.01
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"


def tool_call_done(text: str) -> bool:
    """A call has closed and what follows it is not (the start of) another call."""
    end = text.rfind(TOOL_CALL_CLOSE)
    if end < 0:
        return False
    after = text[end + len(TOOL_CALL_CLOSE):].lstrip()
    if not after:
        return False
    return not (after.startswith(TOOL_CALL_OPEN) or TOOL_CALL_OPEN.startswith(after))


@dataclass
class Job:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    completion_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "stop"
    error: str | None = None
    enqueued: float = field(default_factory=time.time)

    @property
    def greedy(self) -> bool:
        return self.temperature <= GREEDY_BELOW


class Generator:
    """Owns the model; one thread runs batched `generate` calls for queued jobs."""

    def __init__(self, model_dir: str, *, max_tokens_cap: int = 256, max_batch: int = 8,
                 max_batch_tokens: int = 8192, device: str | None = None, dtype: str | None = None,
                 threads: int | None = None, stop_after_tool_call: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .export import source_dirs

        if threads:
            torch.set_num_threads(threads)
        weights, tokenizer_dir = source_dirs(model_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
            dtype or "", torch.bfloat16 if self.device == "cuda" else torch.float32)
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch_dtype).to(self.device).eval()
        self.model_dir = model_dir
        self.max_tokens_cap = max_tokens_cap
        self.max_batch = max_batch
        self.max_batch_tokens = max_batch_tokens
        self.stop_after_tool_call = stop_after_tool_call
        self.queue: queue.Queue[Job] = queue.Queue()
        self.stats = {"requests": 0, "batches": 0, "prompt_tokens": 0, "completion_tokens": 0, "generate_seconds": 0.0}
        self._thread = threading.Thread(target=self._loop, name="generator", daemon=True)
        self._thread.start()

    # -- scheduling ---------------------------------------------------------------------------

    def submit(self, job: Job) -> Job:
        self.queue.put(job)
        job.done.wait()
        return job

    def _take_batch(self) -> list[Job]:
        first = self.queue.get()
        time.sleep(0.02)  # let concurrent requests arrive
        pending = [first]
        while True:
            try:
                pending.append(self.queue.get_nowait())
            except queue.Empty:
                break
        # Oldest job first; companions share its sampling mode and a similar prompt length.
        n0 = len(first.prompt_ids)
        chosen = [first]
        rest = []
        for job in sorted(pending[1:], key=lambda j: abs(len(j.prompt_ids) - n0)):
            n = len(job.prompt_ids)
            longest = max(n, max(len(j.prompt_ids) for j in chosen))
            same_sampling = job.greedy or (job.temperature, job.top_p) == (first.temperature, first.top_p)
            compatible = job.greedy == first.greedy and same_sampling and 0.5 * n0 <= n <= 2 * n0
            if compatible and len(chosen) < self.max_batch and longest * (len(chosen) + 1) <= self.max_batch_tokens:
                chosen.append(job)
            else:
                rest.append(job)
        for job in rest:
            self.queue.put(job)
        return chosen

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            try:
                self._generate(batch)
            except Exception as exc:  # noqa: BLE001 - report to every waiting client
                for job in batch:
                    job.error = f"{type(exc).__name__}: {exc}"
            for job in batch:
                job.done.set()

    def _generate(self, batch: list[Job]) -> None:
        import torch

        tok = self.tokenizer
        enc = tok.pad({"input_ids": [j.prompt_ids for j in batch]}, return_tensors="pt").to(self.device)
        max_new = max(1, max(j.max_tokens for j in batch))
        first = batch[0]
        sampling: dict[str, Any] = ({"do_sample": False} if first.greedy else
                                    {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p})
        extra: dict[str, Any] = {}
        prompt_len = enc["input_ids"].shape[1]
        if self.stop_after_tool_call:
            from transformers import StoppingCriteria, StoppingCriteriaList

            decode = tok.decode

            class ToolCallDone(StoppingCriteria):
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    return torch.tensor([tool_call_done(decode(row[prompt_len:], skip_special_tokens=True))
                                         for row in input_ids.tolist()], dtype=torch.bool, device=input_ids.device)

            extra["stopping_criteria"] = StoppingCriteriaList([ToolCallDone()])
        started = time.time()
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=max_new, pad_token_id=tok.pad_token_id,
                                      eos_token_id=tok.eos_token_id, use_cache=True, top_k=None,
                                      **({"top_p": None} if first.greedy else {}), **sampling, **extra)
        self.stats["generate_seconds"] += time.time() - started
        self.stats["batches"] += 1
        new = out[:, enc["input_ids"].shape[1]:]
        for job, row in zip(batch, new, strict=True):
            ids = row.tolist()
            finish = "length"
            if tok.eos_token_id in ids:
                ids = ids[: ids.index(tok.eos_token_id)]
                finish = "stop"
            ids = ids[: job.max_tokens]
            text = tok.decode(ids, skip_special_tokens=True)
            if self.stop_after_tool_call and tool_call_done(text):
                text, finish = text[: text.rindex(TOOL_CALL_CLOSE) + len(TOOL_CALL_CLOSE)], "stop"
            for s in job.stop:
                cut = text.find(s) if s else -1
                if cut >= 0:
                    text, finish = text[:cut], "stop"
            job.completion_ids, job.text, job.finish_reason = ids, text, finish
            self.stats["requests"] += 1
            self.stats["prompt_tokens"] += len(job.prompt_ids)
            self.stats["completion_tokens"] += len(ids)

    # -- request helpers ----------------------------------------------------------------------

    def make_job(self, prompt_ids: list[int], body: dict[str, Any]) -> Job:
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        requested = body.get("max_tokens") or body.get("max_completion_tokens") or self.max_tokens_cap
        return Job(prompt_ids=prompt_ids, max_tokens=max(1, min(int(requested), self.max_tokens_cap)),
                   temperature=float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0),
                   top_p=float(body.get("top_p") or 1.0), stop=[str(s) for s in stop])


def _usage(job: Job) -> dict[str, int]:
    return {"prompt_tokens": len(job.prompt_ids), "completion_tokens": len(job.completion_ids),
            "total_tokens": len(job.prompt_ids) + len(job.completion_ids)}


def make_handler(gen: Generator, model_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per request is noise
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send(status, {"error": {"message": message, "type": kind}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model",
                                                             "owned_by": "grpo-pipeline", "root": gen.model_dir}]})
            elif self.path.rstrip("/") == "/health":
                self._send(200, {"status": "ok", **gen.stats})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as exc:
                return self._error(400, f"body is not JSON: {exc}")
            route = self.path.rstrip("/")
            try:
                if route in ("/v1/completions", "/completions"):
                    return self._completions(body)
                if route in ("/v1/chat/completions", "/chat/completions"):
                    return self._chat(body)
            except (KeyError, TypeError, ValueError) as exc:
                return self._error(400, f"{type(exc).__name__}: {exc}")
            return self._error(404, f"no route {self.path}")

        def _completions(self, body: dict[str, Any]) -> None:
            prompt = body["prompt"]
            if isinstance(prompt, list):
                if len(prompt) != 1:
                    return self._error(400, "one prompt per request")
                prompt = prompt[0]
            if isinstance(prompt, str):
                ids = gen.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            else:
                ids = list(prompt)
            job = gen.submit(gen.make_job(ids, body))
            if job.error:
                return self._error(500, job.error)
            self._send(200, {
                "id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": body.get("model") or model_name,
                "choices": [{"index": 0, "text": job.text, "finish_reason": job.finish_reason, "logprobs": None}],
                "usage": _usage(job)})

        def _chat(self, body: dict[str, Any]) -> None:
            from .model.chat_format import parse_assistant_turn

            messages = body["messages"]
            tools = body.get("tools") or None
            text = gen.tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
            ids = gen.tokenizer(text, add_special_tokens=False)["input_ids"]
            job = gen.submit(gen.make_job(ids, body))
            if job.error:
                return self._error(500, job.error)
            message: dict[str, Any] = {"role": "assistant", "content": job.text}
            finish = job.finish_reason
            if tools:
                turn = parse_assistant_turn(gen.tokenizer, job.completion_ids + [gen.tokenizer.eos_token_id], ids)
                if turn["tool_calls"]:
                    message = {"role": "assistant", "content": turn["content"] or None, "tool_calls": [
                        {"id": f"call_{uuid.uuid4().hex[:16]}", "type": "function",
                         "function": {"name": c["function"]["name"],
                                      "arguments": json.dumps(c["function"]["arguments"])}}
                        for c in turn["tool_calls"]]}
                    finish = "tool_calls"
            self._send(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model") or model_name,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": _usage(job)})

    return Handler


def serve(model_dir: str, *, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
          max_tokens_cap: int = 256, max_batch: int = 8, threads: int | None = None,
          ready_file: str | None = None, stop_after_tool_call: bool = False) -> None:
    gen = Generator(model_dir, max_tokens_cap=max_tokens_cap, max_batch=max_batch, threads=threads,
                    stop_after_tool_call=stop_after_tool_call)
    server = ThreadingHTTPServer((host, port), make_handler(gen, model_name or model_dir))
    server.daemon_threads = True
    bound = server.server_address[1]
    line = json.dumps({"status": "serving", "url": f"http://{host}:{bound}/v1", "model": model_name or model_dir,
                       "max_tokens_cap": max_tokens_cap, "stop_after_tool_call": stop_after_tool_call})
    print(line, flush=True)
    if ready_file:
        with open(ready_file, "w") as fh:
            fh.write(line + "\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
