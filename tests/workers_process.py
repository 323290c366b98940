"""`authsvc serve --workers N` as a child process: its log read line by line, its workers' pids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from tests.ports import free_port
from tests.server_process import wait_serving

START_SECONDS = 120  # N Python processes starting on a busy 2-core machine


@dataclass
class WorkersProcess:
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path
    metrics_url: str

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON line logged so far (by the parent and by each worker)."""
        found = []
        for raw in self.log_path.read_text().splitlines():
            if raw.startswith("{"):
                found.append(json.loads(raw))
        return found

    def wait_for(self, what: str, found: Callable[[list[dict[str, Any]]], Any], seconds: float = 60) -> Any:
        """Poll the log until `found(lines)` is truthy; return it. AssertionError, with the log's end, when
        the parent exits or `seconds` pass first."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            answer = found(self.lines())
            if answer:
                return answer
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {what} in the log: {self.log_path.read_text()[-3000:]}")

    def serving_pids(self) -> list[int]:
        """The workers of the parent's last `workers serving` line."""
        started = self.wait_for(
            "workers serving", lambda lines: [line for line in lines if line["message"] == "workers serving"]
        )
        return list(started[-1]["worker_pids"])

    def answered_by(self) -> set[int]:
        """The pids of the workers that logged an RPC."""
        return {
            line["worker_pid"] for line in self.lines() if line["message"] == "rpc" and "worker_pid" in line
        }

    def stop(self, seconds: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(seconds)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_workers_process(data_dir: Path, log_path: Path, **settings: str) -> WorkersProcess:
    """Start `authsvc serve --workers N` (N: `settings["workers"]`, default 2) on a free port over
    `data_dir`, with a metrics listener, and wait until every worker serves. The other `settings` are
    AUTHSVC_* variables (without the prefix)."""
    workers = settings.pop("workers", "2")
    target = f"127.0.0.1:{free_port()}"
    metrics = f"127.0.0.1:{free_port()}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATA_DIR": str(data_dir),
        "AUTHSVC_GRPC_LISTEN": target,
        "AUTHSVC_METRICS_LISTEN": metrics,
        "AUTHSVC_BCRYPT_ROUNDS": "4",
        **{f"AUTHSVC_{name.upper()}": value for name, value in settings.items()},
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "authsvc.cli", "serve", "--workers", workers],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = WorkersProcess(process, target, log_path, f"http://{metrics}/metrics")
    try:
        server.wait_for(
            "workers serving",
            lambda lines: any(line["message"] == "workers serving" for line in lines),
            START_SECONDS,
        )
        wait_serving(target, process, log_path)
    except AssertionError:
        server.kill()
        raise
    return server


def call_on_fresh_channels(target: str, until: Callable[[], bool], most: int = 400) -> int:
    """GetJwks, each on a new connection (the kernel picks a worker per connection), until `until()`
    says enough; the number of calls made. AssertionError when `most` calls were not enough."""
    for made in range(1, most + 1):
        with grpc.insecure_channel(target) as channel:
            auth_pb2_grpc.AuthServiceStub(channel).GetJwks(auth_pb2.GetJwksRequest(), timeout=30)
        if until():
            return made
    raise AssertionError(f"still not enough after {most} calls on fresh connections")
