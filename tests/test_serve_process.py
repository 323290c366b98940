"""`authsvc serve` as an operator runs it: a real process, stopped by SIGTERM, finishing what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from tests.ports import free_port
from tests.server_process import wait_serving

pytestmark = pytest.mark.slow

AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def test_sigterm_lets_an_in_flight_login_finish_then_exits_cleanly(tmp_path):
    target = f"127.0.0.1:{free_port()}"
    log_path = tmp_path / "serve.log"
    env = {
        **os.environ,
        "AUTHSVC_DATA_DIR": str(tmp_path),
        "AUTHSVC_GRPC_LISTEN": target,
        "AUTHSVC_BCRYPT_ROUNDS": "12",  # a login takes about 300 ms: long enough to be in flight
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen([AUTHSVC, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_serving(target, process, log_path, seconds=30)
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
    assert '"stopped"' in log_path.read_text()
    # What it had committed is still there after the restart.
    with log_path.open("ab") as log:
        second = subprocess.Popen([AUTHSVC, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_serving(target, second, log_path, seconds=30)
        with grpc.insecure_channel(target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            renewed = stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token), timeout=10)
            assert renewed.session_id == pair.session_id
    finally:
        second.terminate()
        second.wait(timeout=30)
