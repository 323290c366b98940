"""The real server stopped under a running gateway: a quick 503, then recovery on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp

from authsvc.app.start import start_server
from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import TEST_DEADLINE_SECONDS, running_gateway


async def _login_status(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    body = {"email": "ada@example.com", "password": PASSWORD}
    async with http.post(url + "/api/v1/auth/login", json=body) as response:
        return response.status, await response.json()


async def test_server_down_is_503_within_the_deadline_and_back_to_200_without_a_gateway_restart(
    auth_server: ServerHandle, register: Callable[[], Awaitable[object]], http: aiohttp.ClientSession
) -> None:
    await register()
    port = auth_server.running.port
    async with running_gateway(auth_server.target) as gateway:
        status, _ = await _login_status(http, gateway.url)
        assert status == 200

        await auth_server.running.stop(1)
        started = time.monotonic()
        status, body = await _login_status(http, gateway.url)
        assert time.monotonic() - started < TEST_DEADLINE_SECONDS
        assert status == 503
        assert body == {
            "detail": "The authentication service is unavailable",
            "code": "UNAVAILABLE",
            "reason": "SERVICE_UNAVAILABLE",
        }
        async with http.get(gateway.url + "/healthz") as response:
            assert response.status == 503

        # Same data, same port: the gateway's channel finds the server again by itself.
        settings = replace(auth_server.settings, grpc_listen=f"127.0.0.1:{port}")
        auth_server.running = await start_server(settings, clock=auth_server.clock)
        deadline = time.monotonic() + 10
        while (status := (await _login_status(http, gateway.url))[0]) != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert status == 200
        while time.monotonic() < deadline:
            async with http.get(gateway.url + "/healthz") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.1)
        assert response.status == 200
