"""TEST DOUBLE for the Hugging Face Hub (the real Hub cannot be reached here).

Serves one local model directory under any repo id and revision (main is
COMMIT; another branch or tag gets a commit of its own), through the routes the real
`huggingface_hub` client uses for `snapshot_download` (repo info, tree listing,
HEAD/GET of `resolve` URLs), on loopback. For the first `--storm-seconds` after
the first request, every request is answered `429 Too Many Requests` with a
`Retry-After` header, like the Hub's per-IP rate limit.

File downloads honour `Range: bytes=N-` (206 Partial Content), as the Hub's
CDN does, so a client can resume. Two knobs break transfers on purpose:
`--partial-once FILE` sends the first full GET of FILE only half-way (the full
Content-Length, then the connection is closed mid-body);
`--rate-limit-file FILE --rate-limit-count K` answers the first K GETs of FILE
with 429 (more than the client's own retries, so that download attempt fails).

Each request is logged as one JSON line (time, method, path, status, range,
bytes: the body bytes really sent) to `--log`, so a test can compare what was
served with what the pipeline recorded.

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


def commit_of(revision: str) -> str:
    """main is COMMIT, a commit hash is itself, any other branch or tag a commit of its own."""
    if revision == "main":
        return COMMIT
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    return hashlib.sha1(revision.encode()).hexdigest()


class HubState:
    def __init__(self, model_dir: Path, storm_seconds: float, retry_after: int, log_path: Path,
                 partial_once: list[str] | None = None, rate_limited: dict[str, int] | None = None) -> None:
        self.files = {p.relative_to(model_dir).as_posix(): p for p in sorted(model_dir.rglob("*")) if p.is_file()}
        self.storm_seconds = storm_seconds
        self.retry_after = retry_after
        self.partial_once = set(partial_once or [])
        self.rate_limited = dict(rate_limited or {})
        self.first_request: float | None = None
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")

    def storming(self) -> bool:
        with self.lock:
            now = time.time()
            if self.first_request is None:
                self.first_request = now
            return now - self.first_request < self.storm_seconds

    def take_partial(self, name: str) -> bool:
        """True once per `--partial-once` file: this transfer is to be cut half-way."""
        with self.lock:
            if name in self.partial_once:
                self.partial_once.discard(name)
                return True
            return False

    def take_rate_limit(self, name: str) -> bool:
        with self.lock:
            if self.rate_limited.get(name, 0) > 0:
                self.rate_limited[name] -= 1
                return True
            return False

    def record(self, method: str, path: str, status: int, range_header: str | None = None,
               sent: int | None = None) -> None:
        with self.lock:
            entry = {"time": time.time(), "method": method, "path": path, "status": status}
            if range_header is not None:
                entry["range"] = range_header
            if sent is not None:
                entry["bytes"] = sent
            self.log.write(json.dumps(entry) + "\n")
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
                self._json({"id": m["repo"], "modelId": m["repo"], "sha": commit_of(unquote(m["rev"])), "private": False,
                            "siblings": [{"rfilename": f} for f in state.files]})
                return
            if tree_re.match(path):
                self._json([{"type": "file", "path": f, "size": p.stat().st_size, "oid": _etag(p)}
                            for f, p in state.files.items()])
                return
            if (m := resolve_re.match(path)) and m["file"] in state.files:
                self._file(m["file"], commit_of(m["rev"]), head)
                return
            self._send(404, b'{"error":"not found"}', {"Content-Type": "application/json", "X-Error-Code": "EntryNotFound"}, head)

        def _file(self, name: str, commit: str, head: bool) -> None:
            p = state.files[name]
            body = p.read_bytes()
            headers = {"X-Repo-Commit": commit, "ETag": f'"{_etag(p)}"', "Content-Type": "application/octet-stream",
                       "Accept-Ranges": "bytes"}
            if not head and state.take_rate_limit(name):
                self._send(429, b'{"error":"Too Many Requests"}',
                           {"Retry-After": "0", "Content-Type": "application/json"})
                return
            wanted = self.headers.get("Range")
            status, start = 200, 0
            if wanted and not head:
                r = re.fullmatch(r"bytes=(\d+)-", wanted.strip())
                if r is None or int(r[1]) >= len(body):
                    self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    return
                status, start = 206, int(r[1])
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            payload = body[start:]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            sent = 0
            if not head:
                if status == 200 and state.take_partial(name):
                    # Half the body, then the connection closes: an interrupted transfer.
                    sent = len(payload) // 2
                    self.wfile.write(payload[:sent])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(payload)
                    sent = len(payload)
            state.record(self.command, self.path, status, wanted, sent)

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
    ap.add_argument("--partial-once", action="append", default=[], metavar="FILE",
                    help="cut the first full transfer of FILE half-way (repeatable)")
    ap.add_argument("--rate-limit-file", action="append", default=[], metavar="FILE",
                    help="answer the first --rate-limit-count GETs of FILE with 429 (repeatable)")
    ap.add_argument("--rate-limit-count", type=int, default=6)
    ns = ap.parse_args()
    state = HubState(ns.model_dir, ns.storm_seconds, ns.retry_after, ns.log, ns.partial_once,
                     {name: ns.rate_limit_count for name in ns.rate_limit_file})
    server = ThreadingHTTPServer(("127.0.0.1", ns.port), make_handler(state))
    ns.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
