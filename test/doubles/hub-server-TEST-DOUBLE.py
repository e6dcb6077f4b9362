"""TEST DOUBLE for the Hugging Face Hub (the real Hub cannot be reached here).

Serves one local model directory under any repo id, through the routes the real
`huggingface_hub` client uses for `snapshot_download` (repo info, tree listing,
HEAD/GET of `resolve` URLs), on loopback. For the first `--storm-seconds` after
the first request, every request is answered `429 Too Many Requests` with a
`Retry-After` header, like the Hub's per-IP rate limit.

Each request is logged as one JSON line (time, method, path, status) to
`--log`, so a test can compare what was served with what the pipeline recorded.

    python hub-server-TEST-DOUBLE.py --model-dir DIR --port 0 --port-file F --log L
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubState:
    def __init__(self, model_dir: Path, storm_seconds: float, retry_after: int, log_path: Path) -> None:
        self.files = {p.relative_to(model_dir).as_posix(): p for p in sorted(model_dir.rglob("*")) if p.is_file()}
        self.storm_seconds = storm_seconds
        self.retry_after = retry_after
        self.first_request: float | None = None
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")

    def storming(self) -> bool:
        with self.lock:
            now = time.time()
            if self.first_request is None:
                self.first_request = now
            return now - self.first_request < self.storm_seconds

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.log.write(json.dumps({"time": time.time(), "method": method, "path": path, "status": status}) + "\n")
            self.log.flush()


def _etag(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def make_handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    info_re = re.compile(r"^/api/models/(?P<repo>.+?)/revision/(?P<rev>[^/]+)$")
    tree_re = re.compile(r"^/api/models/(?P<repo>.+?)/tree/(?P<rev>[^/]+)(/.*)?$")
    resolve_re = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:  # quiet: we keep our own JSON log
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            state.record(self.command, self.path, status)

        def _json(self, obj: object) -> None:
            self._send(200, json.dumps(obj).encode(), {"Content-Type": "application/json"})

        def _handle(self, head: bool) -> None:
            path = unquote(urlparse(self.path).path)
            if state.storming():
                body = b'{"error":"Too Many Requests"}'
                self._send(429, body, {"Retry-After": str(state.retry_after), "Content-Type": "application/json"}, head)
                return
            if m := info_re.match(path):
                self._json({"id": m["repo"], "modelId": m["repo"], "sha": COMMIT, "private": False,
                            "siblings": [{"rfilename": f} for f in state.files]})
                return
            if tree_re.match(path):
                self._json([{"type": "file", "path": f, "size": p.stat().st_size, "oid": _etag(p)}
                            for f, p in state.files.items()])
                return
            if (m := resolve_re.match(path)) and m["file"] in state.files:
                p = state.files[m["file"]]
                body = p.read_bytes()
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{_etag(p)}"', "Content-Type": "application/octet-stream"}
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                state.record(self.command, self.path, 200)
                return
            self._send(404, b'{"error":"not found"}', {"Content-Type": "application/json", "X-Error-Code": "EntryNotFound"}, head)

        def do_GET(self) -> None:  # noqa: N802
            self._handle(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._handle(head=True)

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True, type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", type=Path, required=True)
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--storm-seconds", type=float, default=0.0)
    ap.add_argument("--retry-after", type=int, default=1)
    ns = ap.parse_args()
    state = HubState(ns.model_dir, ns.storm_seconds, ns.retry_after, ns.log)
    server = ThreadingHTTPServer(("127.0.0.1", ns.port), make_handler(state))
    ns.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
