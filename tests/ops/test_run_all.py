"""`make run` (scripts/run_all.py) needs no step for the gateway secret: the server and the gateway, started
together on a fresh data dir, agree on one secret file, so the server believes the HTTP client's address
the gateway forwards."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from authsvc import gateway_secret
from tests.addresses import http_from, loopback
from tests.conftest import PASSWORD
from tests.ports import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"email": "ada@example.com", "password": PASSWORD}


async def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, "run_all.py exited"
            try:
                async with http.get(f"{url}/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url}/healthz not 200 within {seconds:g} s")


async def test_make_run_shares_the_gateway_secret_with_no_setup(tmp_path: Path):
    data_dir = tmp_path / "data"
    grpc_listen, http_port = f"127.0.0.1:{free_port()}", free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATA_DIR": str(data_dir),
        "AUTHSVC_GRPC_LISTEN": grpc_listen,
        "AUTHSVC_GRPC_TARGET": grpc_listen,
        "AUTHSVC_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "AUTHSVC_BCRYPT_ROUNDS": "4",
    }
    log = tmp_path / "run_all.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "run_all.py")], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        await wait_healthy(url, process)
        async with http_from(loopback(2)) as http:
            async with http.post(f"{url}/api/v1/auth/register", json=CREDENTIALS) as answer:
                assert answer.status == 201, await answer.text()
            async with http.post(f"{url}/api/v1/auth/login", json=CREDENTIALS) as answer:
                pair = await answer.json()
            bearer = {"Authorization": f"Bearer {pair['access_token']}"}
            async with http.get(f"{url}/api/v1/auth/sessions", headers=bearer) as answer:
                (session,) = (await answer.json())["sessions"]
        assert session["ip_address"] == loopback(2), log.read_text()[-2000:]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    secret_file = data_dir / gateway_secret.FILE_NAME
    assert oct(stat.S_IMODE(secret_file.stat().st_mode)) == oct(0o600)
    assert not [path.name for path in data_dir.iterdir() if path.name.endswith(".tmp")]
    assert process.returncode == 0, log.read_text()[-2000:]
