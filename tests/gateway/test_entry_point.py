"""`authsvc-gateway` (authsvc/gateway_cli.py) and its alias `python scripts/rest_gateway.py`: serve the app
from AUTHSVC_* variables, stop cleanly on a signal, and fail at start with one line on stderr and status 2."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from authsvc.gateway_cli import log_level
from tests.conftest import ServerHandle
from tests.ports import free_port

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rest_gateway.py"
# The console script the package installs (pyproject.toml [project.scripts]), beside this interpreter.
CONSOLE_SCRIPT = Path(sys.executable).parent / "authsvc-gateway"


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
    await _serve_and_stop(http, [sys.executable, str(SCRIPT)], env, port, signum)


async def test_the_console_script_is_installed_and_serves(
    auth_server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is missing: reinstall (`make`, or pip install -e .)"
    port = free_port()
    env = {
        **os.environ,
        "AUTHSVC_HTTP_LISTEN": f"127.0.0.1:{port}",
        "AUTHSVC_GRPC_TARGET": auth_server.target,
        "AUTHSVC_GATEWAY_SECRET_FILE": str(auth_server.settings.gateway_secret_path),
    }
    await _serve_and_stop(http, [str(CONSOLE_SCRIPT)], env, port, signal.SIGTERM)


async def _serve_and_stop(
    http: aiohttp.ClientSession, command: list[str], env: dict[str, str], port: int, signum: signal.Signals
) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
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


def _start_failure(env: dict[str, str]) -> str:
    """Run the console script expecting it to stop at start; its stderr, after checking status 2 and one
    line with no traceback."""
    completed = subprocess.run(
        [str(CONSOLE_SCRIPT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith("authsvc-gateway: ")
    return completed.stderr


def test_a_port_in_use_is_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stderr = _start_failure(
            {"AUTHSVC_HTTP_LISTEN": f"127.0.0.1:{port}", "AUTHSVC_DATA_DIR": str(tmp_path / "data")}
        )
    assert f"AUTHSVC_HTTP_LISTEN=127.0.0.1:{port} cannot be bound: Address already in use" in stderr


@pytest.mark.parametrize("level", ["loud", "warn", "10"])
def test_a_bad_log_level_is_one_line_and_status_2(level: str) -> None:
    stderr = _start_failure({"AUTHSVC_LOG_LEVEL": level})
    assert "AUTHSVC_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in stderr


def test_the_log_level_is_read_as_the_server_reads_it() -> None:
    assert log_level({}) == "INFO"
    assert log_level({"AUTHSVC_LOG_LEVEL": ""}) == "INFO"
    assert log_level({"AUTHSVC_LOG_LEVEL": " debug "}) == "DEBUG"
