"""`authsvc serve` as a child process, for tests that kill it or read what it logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM: the graceful shutdown."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def start_server_process(data_dir: Path, log_path: Path, **settings: str) -> ServerProcess:
    """Start `authsvc serve` on a free port over `data_dir`, its output appended to `log_path`, and wait
    until its health check says SERVING. `settings` are AUTHSVC_* variables (without the prefix)."""
    target = f"127.0.0.1:{free_port()}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATA_DIR": str(data_dir),
        "AUTHSVC_GRPC_LISTEN": target,
        "AUTHSVC_BCRYPT_ROUNDS": "4",
        **{f"AUTHSVC_{name.upper()}": value for name, value in settings.items()},
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "authsvc.cli", "serve"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    server = ServerProcess(process, target, log_path)
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"authsvc serve exited with {process.returncode}: {log_path.read_text()}")
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return server
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"authsvc serve did not become healthy: {log_path.read_text()}")
