"""`authsvc serve` as an operator runs it: a real process, stopped by SIGTERM, finishing what it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.v1 import auth_pb2, auth_pb2_grpc

AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_serving(target: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited during start-up"
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise AssertionError("the server never became SERVING")


def test_sigterm_lets_an_in_flight_login_finish_then_exits_cleanly(tmp_path):
    target = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "AUTHSVC_DATA_DIR": str(tmp_path),
        "AUTHSVC_GRPC_LISTEN": target,
        "AUTHSVC_BCRYPT_ROUNDS": "12",  # a login takes about 300 ms: long enough to be in flight
    }
    process = subprocess.Popen([AUTHSVC, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_serving(target, process)
        with grpc.insecure_channel(target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            credentials = {"email": "ada@example.com", "password": "correct horse"}
            stub.Register(auth_pb2.RegisterRequest(**credentials), timeout=30)
            login = stub.Login.future(auth_pb2.LoginRequest(**credentials), timeout=30)
            time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            pair = login.result()
        assert pair.refresh_token
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        output = process.stdout.read().decode() if process.stdout else ""
    assert '"stopped"' in output
    # What it had committed is still there after the restart.
    second = subprocess.Popen([AUTHSVC, "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_serving(target, second)
        with grpc.insecure_channel(target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            renewed = stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token), timeout=10)
            assert renewed.session_id == pair.session_id
    finally:
        second.terminate()
        second.wait(timeout=30)
