"""`authsvc serve` as a child process, for tests that kill it or read what it logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.ports import free_port


def wait_serving(target: str, process: subprocess.Popen[bytes], log_path: Path, seconds: float = 60) -> None:
    """Poll the health service of the `authsvc serve` at `target` until it says SERVING.

    Raise AssertionError, with the end of its log, when the process exits or `seconds` pass first.
    """
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"authsvc serve exited with {process.returncode}: {_tail(log_path)}")
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"authsvc serve not SERVING after {seconds:g} s: {_tail(log_path)}")


def _tail(log_path: Path) -> str:
    return log_path.read_text()[-2000:] if log_path.exists() else "(no log)"


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
    try:
        wait_serving(target, process, log_path)
    except AssertionError:
        if process.poll() is None:
            server.kill()
        raise
    return server
