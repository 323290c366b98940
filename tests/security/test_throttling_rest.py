"""Throttling seen from HTTP, through the real REST sidecar in front of the real server: 429 with
Retry-After, and an X-Forwarded-For that the HTTP client writes itself does not choose its address."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest

from authsvc.transport.server import start_server
from tests.conftest import PASSWORD, ManualClock
from tests.gateway.conftest import running_gateway


@pytest.fixture
async def gateway_url(server_settings):
    settings = replace(server_settings, login_max_failures_per_address=8)
    running = await start_server(settings, clock=ManualClock())
    try:
        async with running_gateway(running.target) as gateway:
            yield f"{gateway.url}/api/v1/auth"
    finally:
        await running.stop(1)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def login(http, url: str, email: str, password: str, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with http.post(
        f"{url}/login", json={"email": email, "password": password}, headers=headers
    ) as answer:
        return answer.status, answer.headers.get("Retry-After"), await answer.json()


async def test_the_sixth_failed_login_over_http_is_429_with_retry_after(gateway_url, http):
    async with http.post(
        f"{gateway_url}/register", json={"email": "ada@example.com", "password": PASSWORD}
    ) as r:
        assert r.status == 201
    for _ in range(5):
        status, _, body = await login(http, gateway_url, "ada@example.com", "wrong password")
        assert (status, body["reason"]) == (401, "INVALID_CREDENTIALS")
    status, retry_after, body = await login(http, gateway_url, "ada@example.com", PASSWORD)
    assert (status, retry_after) == (429, "300")
    assert (body["code"], body["reason"]) == ("RESOURCE_EXHAUSTED", "THROTTLED")


async def test_an_x_forwarded_for_written_by_the_http_client_does_not_escape_the_address_limit(
    gateway_url, http
):
    # The sidecar appends the peer it saw; the server believes only that last entry.
    statuses = [
        (await login(http, gateway_url, f"user{i}@example.com", "wrong password", f"198.51.100.{i}"))[0]
        for i in range(9)
    ]
    assert statuses == [401] * 8 + [429]
