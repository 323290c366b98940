"""`authsvc-gateway --workers 2`: two processes on one HTTP port, serving until SIGTERM stops them all."""

from __future__ import annotations

import json
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

pytestmark = pytest.mark.slow

CONSOLE_SCRIPT = Path(sys.executable).parent / "authsvc-gateway"


def _worker_pids(log_path: Path, process: subprocess.Popen[bytes], seconds: float = 120) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        for raw in log_path.read_text().splitlines():
            line = json.loads(raw) if raw.startswith("{") else {}
            if line.get("message") == "workers serving":
                return list(line["worker_pids"])
        time.sleep(0.05)
    raise AssertionError(f"the gateway's workers did not start: {log_path.read_text()[-3000:]}")


def _jwks_requests(exposition: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("authsvc_http_requests_total{") and "jwks" in line and 'status="200"' in line
    )


async def test_two_gateway_workers_serve_one_port_and_stop_on_sigterm(auth_server: ServerHandle, tmp_path):
    port = free_port()
    log_path = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "AUTHSVC_HTTP_LISTEN": f"127.0.0.1:{port}",
        "AUTHSVC_GRPC_TARGET": auth_server.target,
        "AUTHSVC_GATEWAY_SECRET_FILE": str(auth_server.settings.gateway_secret_path),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        pids = _worker_pids(log_path, process)
        assert len(set(pids)) == 2 and process.pid not in pids
        # A new connection each time, so the kernel may pick either worker: every one is answered.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(20):
                async with http.get(f"http://127.0.0.1:{port}/.well-known/jwks.json") as response:
                    assert response.status == 200
                    assert (await response.json())["keys"]
            # Whichever worker answers the scrape reports both workers' requests, summed.
            for _ in range(6):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    assert _jwks_requests(await response.text()) == 20
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    stopped = [raw for raw in log_path.read_text().splitlines() if '"stopped"' in raw]
    assert stopped, log_path.read_text()[-2000:]


def test_a_bad_number_of_gateway_workers_is_one_line_and_status_2():
    completed = subprocess.run(
        [str(CONSOLE_SCRIPT)],
        env={**os.environ, "AUTHSVC_GATEWAY_WORKERS": "abc"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "authsvc-gateway: AUTHSVC_GATEWAY_WORKERS must be a positive number or auto, got 'abc'"
    ]
