"""Throttling seen from HTTP, through the real REST sidecar in front of the real server: 429 with
Retry-After, an X-Forwarded-For that the HTTP client writes itself does not choose its address, and
HTTP clients at other addresses (each bound to its own loopback address) are not held by a stranger's
guesses or registrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import aiohttp
import pytest

from authsvc.app.start import start_server
from tests.addresses import loopback
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


@asynccontextmanager
async def http_from(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client whose connections come from `address` (a loopback address)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def register(http, url: str, email: str) -> tuple[int, str | None]:
    async with http.post(f"{url}/register", json={"email": email, "password": PASSWORD}) as answer:
        return answer.status, answer.headers.get("Retry-After")


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
    # The sidecar replaces the header with the HTTP peer it saw (no AUTHSVC_HTTP_TRUSTED_PROXIES here), so
    # all nine guesses count against this client's own address.
    statuses = [
        (await login(http, gateway_url, f"user{i}@example.com", "wrong password", f"198.51.100.{i}"))[0]
        for i in range(9)
    ]
    assert statuses == [401] * 8 + [429]


async def test_a_strangers_guesses_over_http_do_not_lock_out_the_owner_elsewhere(gateway_url):
    async with http_from(loopback(2)) as owner, http_from(loopback(9)) as stranger:
        assert await register(owner, gateway_url, "ada@example.com") == (201, None)
        for _ in range(5):
            status, _, _ = await login(stranger, gateway_url, "ada@example.com", "wrong password")
            assert status == 401
        status, retry_after, _ = await login(stranger, gateway_url, "ada@example.com", PASSWORD)
        assert (status, retry_after) == (429, "300")
        status, _, body = await login(owner, gateway_url, "ada@example.com", PASSWORD)
        assert status == 200, body


async def test_the_eleventh_registration_over_http_from_one_address_is_429(gateway_url):
    async with http_from(loopback(9)) as crawler, http_from(loopback(2)) as newcomer:
        # Whether the email is taken or new, each answer costs one of the address's ten.
        statuses = [(await register(crawler, gateway_url, "ada@example.com"))[0] for _ in range(10)]
        assert statuses == [201] + [409] * 9
        assert await register(crawler, gateway_url, "bob@example.com") == (429, "3600")
        assert await register(newcomer, gateway_url, "bob@example.com") == (201, None)
