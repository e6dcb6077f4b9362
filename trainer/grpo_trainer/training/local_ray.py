"""A private Ray head on loopback, for tests and benchmarks.

Like the pipeline's startRay stage, from the same settings (contracts/ray-head.json):
token authentication with a fresh token in an owner-only file, every server
on loopback, its own short temp dir (Ray's unix sockets live there), free
ports for everything it listens on, its own process group, and a stop that
ends only the processes of this head (the group, then anything still running
from its temp dir), never `ray stop`, which would stop every Ray head of the
user on the machine. Clients take `client_env()`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import contracts

HEAD_SETTINGS: dict[str, Any] = contracts.load("ray-head.json")


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports. Every socket stays bound until all are chosen: bound and closed one at a
    time, the kernel hands the same port out again (a head once got 38835 for two of Ray's components and did not
    start)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def ray_command() -> list[str]:
    """The `ray` CLI of the running interpreter: its environment's script, or the
    same entry point through this interpreter (packages installed with --target)."""
    script = Path(sys.executable).with_name("ray")
    if script.is_file():
        return [str(script)]
    entry = "import sys\nfrom ray.scripts.scripts import main\nsys.argv[0] = 'ray'\nsys.exit(main())"
    return [sys.executable, "-c", entry]


def auth_env(token_path: Path) -> dict[str, str]:
    """The head's and its clients' environment: token auth from this file, loopback only."""
    return {**HEAD_SETTINGS["env"], HEAD_SETTINGS["token_path_env"]: str(token_path)}


@dataclass
class LocalRayHead:
    address: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log_path: Path
    token_path: Path

    def client_env(self) -> dict[str, str]:
        """What a client (the trainer, `ray status`) needs to join this head."""
        return {**auth_env(self.token_path), "RAY_ADDRESS": self.address}

    def status(self) -> str:
        try:
            out = subprocess.run([*ray_command(), "status", "--address", self.address], capture_output=True,
                                 text=True, timeout=60, env={**os.environ, **self.client_env()})
        except subprocess.TimeoutExpired:
            return ""
        return out.stdout if out.returncode == 0 else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        # Workers of this head run with its temp dir on their command line;
        # end those of them that outlived the head (and only those).
        for pid in pids_mentioning(str(self.temp_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def pids_mentioning(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found


def start_local_head(num_cpus: int, num_gpus: int = 0, timeout_s: float = 120,
                     env: dict[str, str] | None = None) -> LocalRayHead:
    """Start `ray start --head --block` on 127.0.0.1 and wait until `ray status`
    shows the requested CPUs and GPUs."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # mode 0700
    token_path = temp_dir / "auth_token"
    token_path.touch(mode=0o600)
    token_path.write_text(secrets.token_hex(32))
    ports = dict(zip(HEAD_SETTINGS["port_flags"], free_ports(len(HEAD_SETTINGS["port_flags"])), strict=True))
    argv = [*ray_command(), "start", *HEAD_SETTINGS["flags"], f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}",
            f"--num-gpus={num_gpus}", *(f"--{name}={value}" for name, value in ports.items())]
    log_path = temp_dir / "head.log"
    head_env = dict(os.environ if env is None else env)
    head_env.pop("RAY_ADDRESS", None)
    head_env.update(auth_env(token_path))
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=head_env)
    head = LocalRayHead(f"127.0.0.1:{ports['port']}", proc, temp_dir, log_path, token_path)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        text = head.status()
        if _has_resources(text, num_cpus, num_gpus):
            return head
        time.sleep(1)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    head.stop()
    raise RuntimeError(f"the Ray head did not report {num_cpus} CPU / {num_gpus} GPU within {timeout_s}s:\n{tail}")


def _has_resources(status: str, cpus: int, gpus: int) -> bool:
    """Parse `ray status` lines such as ' 0.0/2.0 CPU' and ' 0.0/2.0 GPU'."""
    def total(kind: str) -> float:
        for line in status.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == kind and "/" in parts[0]:
                try:
                    return float(parts[0].split("/")[1])
                except ValueError:
                    continue
        return 0.0

    return bool(status) and total("CPU") >= cpus and total("GPU") >= gpus
