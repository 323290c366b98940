"""The real signal: `authsvc serve` in a subprocess re-reads its certificate on SIGHUP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from tests.ops.certs import Authority
from tests.ops.conftest import health_over
from tests.ports import free_port

pytestmark = pytest.mark.slow


async def wait_for(target: str, credentials, expected: str, seconds: float = 20.0) -> str:
    status = ""
    for _ in range(int(seconds * 10)):
        status = await health_over(target, credentials)
        if status == expected:
            break
        await asyncio.sleep(0.1)
    return status


async def test_sighup_swaps_the_certificate_of_a_running_server(pki, tmp_path):
    target = f"127.0.0.1:{free_port()}"
    environment = {
        **os.environ,
        "AUTHSVC_GRPC_LISTEN": target,
        "AUTHSVC_DATA_DIR": str(tmp_path / "data"),
        "AUTHSVC_BCRYPT_ROUNDS": "4",
        "AUTHSVC_TLS_CERT_FILE": str(pki.server_cert),
        "AUTHSVC_TLS_KEY_FILE": str(pki.server_key),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "authsvc.cli", "serve"], env=environment, stdout=log, stderr=log
        )
    try:
        assert await wait_for(target, pki.credentials(), "SERVING") == "SERVING", log_path.read_text()
        successor = Authority("successor CA")
        successor.server().write(pki.directory, "server")
        process.send_signal(signal.SIGHUP)
        assert await wait_for(target, pki.credentials(ca=successor), "SERVING") == "SERVING"
        assert await health_over(target, pki.credentials()) == "UNAVAILABLE"
        assert process.poll() is None  # SIGHUP reloads; it does not stop the server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert "TLS certificate reloaded" in log_path.read_text()
