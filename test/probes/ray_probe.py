"""Probes for the Ray security tests: what a client WITHOUT the run's token can do.

    ray_probe.py task ADDRESS      join the cluster and run a task; prints {"ran": bool, "error": ...}
    ray_probe.py listener HOST:PORT
        unauthenticated requests: Ray's own RPCs (refused = UNAUTHENTICATED, from Ray's token check),
        else an HTTP GET (refused = 401/403); prints {"refused": bool, ...}

Run with the trainer's Python (it has ray and grpcio). The caller decides what is in the environment.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path


def task(address: str) -> dict[str, object]:
    import ray

    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)

        @ray.remote
        def hello() -> str:
            return "ran"

        return {"ran": ray.get(hello.remote(), timeout=60) == "ran", "error": None}
    except Exception as exc:  # noqa: BLE001 - any refusal is the answer we look for
        return {"ran": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def ray_methods() -> list[str]:
    """Every RPC Ray's servers offer ('/ray.rpc.Service/Method'): from Ray's generated Python stubs
    and from its native binaries (the object manager's service exists only there). Read-only
    looking ones first: on a server without a token check, the first answer ends the probe."""
    import ray

    root = Path(ray.__file__).parent
    found: set[str] = set()
    pattern = rb"/ray\.rpc\.[A-Za-z.]+Service/[A-Z][A-Za-z]+|/ray\.rpc\.Raylet[A-Za-z]+/[A-Z][A-Za-z]+"
    for path in [*root.glob("core/generated/*_pb2_grpc.py"), root / "_raylet.so",
                 root / "core/src/ray/raylet/raylet", root / "core/src/ray/gcs/gcs_server"]:
        if path.is_file():
            found.update(m.decode() for m in re.findall(pattern, path.read_bytes()))
    return sorted(found, key=lambda m: (not re.search(r"/(Get|List|Check|Cluster|Health)", m), m))


def listener(target: str) -> dict[str, object]:
    """Ask a listener to do something for a client that has no token. Ray's Python gRPC servers
    check tokens only on methods they serve (an unknown one is UNIMPLEMENTED either way), so the
    probe calls Ray's real methods until one is answered."""
    import grpc

    channel = grpc.insecure_channel(target)
    try:
        for i, method in enumerate(ray_methods()):
            call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            try:
                call(b"", timeout=5)
                return {"refused": False, "protocol": "grpc", "method": method, "status": "OK"}
            except grpc.RpcError as err:
                code = err.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                continue
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and i == 0:
                break  # not a gRPC server at all
            return {"refused": code == grpc.StatusCode.UNAUTHENTICATED, "protocol": "grpc", "method": method,
                    "status": code.name}
    finally:
        channel.close()
    try:
        with urllib.request.urlopen(f"http://{target}/", timeout=5) as resp:
            return {"refused": False, "protocol": "http", "status": resp.status}
    except urllib.error.HTTPError as err:
        return {"refused": err.code in (401, 403), "protocol": "http", "status": err.code}
    except Exception as exc:  # noqa: BLE001
        # Neither a Ray RPC nor HTTP answered: nothing this probe can make it do.
        return {"refused": True, "protocol": "none", "status": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    kind, arg = sys.argv[1], sys.argv[2]
    print(json.dumps(task(arg) if kind == "task" else listener(arg)), flush=True)
