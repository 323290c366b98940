"""`python scripts/rest_gateway.py`: serves the app from AUTHSVC_* variables and stops cleanly on a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ServerHandle
from tests.ports import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rest_gateway.py"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_the_script_serves_and_stops_cleanly_on_a_signal(
    auth_server: ServerHandle, http: aiohttp.ClientSession, signum: signal.Signals
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AUTHSVC_HTTP_LISTEN": f"127.0.0.1:{port}",
        "AUTHSVC_GRPC_TARGET": auth_server.target,
        "AUTHSVC_GATEWAY_DEADLINE_SECONDS": "3",
        # The server's secret, as `make run` shares it (and never a data/ folder in the working tree).
        "AUTHSVC_GATEWAY_SECRET_FILE": str(auth_server.settings.gateway_secret_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        status = await _health_status(http, f"http://127.0.0.1:{port}/healthz", seconds=20)
        assert status == 200
        process.send_signal(signum)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode(errors="replace")
    assert b"REST gateway stopped" in output


async def _health_status(http: aiohttp.ClientSession, url: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        try:
            async with http.get(url) as response:
                if response.status == 200 or time.monotonic() > deadline:
                    return int(response.status)
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


def test_settings_errors_exit_with_status_2() -> None:
    env = {**os.environ, "AUTHSVC_HTTP_LISTEN": "nonsense"}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, timeout=30, check=False
    )
    assert completed.returncode == 2
    assert b"AUTHSVC_HTTP_LISTEN" in completed.stderr
