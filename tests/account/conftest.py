"""Account page fixtures: the real server, the real gateway on port 0, and Debian's Chromium headless.

The browser is never downloaded: Playwright drives /usr/bin/chromium (`.ci/run` installs it). Without it
the browser tests skip locally and fail under CI=true, so CI cannot pass by testing nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway

CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium as root, on a machine with no network but the loopback: no sandbox, no GPU, and none of
# the background connections that a closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EMAIL = "ada@example.com"
FIREFOX_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
DESKTOP = ViewportSize(width=1000, height=760)
PHONE = ViewportSize(width=375, height=740)


@dataclass
class Account:
    """A registered user behind a running gateway, with a plain HTTP client for "another device"."""

    server: ServerHandle
    base: str
    http: aiohttp.ClientSession

    @property
    def page_url(self) -> str:
        return self.base + "/account"

    async def call(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=json, headers=headers or {}) as answer:
            return answer.status, await answer.json()

    async def login_elsewhere(self, user_agent: str = FIREFOX_ON_LINUX) -> dict[str, Any]:
        """Sign in from another client, as a second device would."""
        status, pair = await self.call(
            "POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD}, {"User-Agent": user_agent}
        )
        assert status == 200, pair
        return dict(pair)

    async def refresh_status(self, refresh_token: str) -> tuple[int, str]:
        status, body = await self.call("POST", "/api/v1/auth/refresh", {"refresh_token": refresh_token})
        return status, str(body.get("reason", ""))


@pytest.fixture
async def account(auth_server: ServerHandle) -> AsyncIterator[Account]:
    async with (
        running_gateway(auth_server.target) as gateway,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        account = Account(auth_server, gateway.url, http)
        await _until_serving(account)
        status, body = await account.call(
            "POST", "/api/v1/auth/register", {"email": EMAIL, "password": PASSWORD}
        )
        assert status == 201, body
        yield account


async def _until_serving(account: Account) -> None:
    """Wait until the gateway reaches the server. Its calls do not wait for the channel to be ready, and
    once in a full run (two suites at once) the first call met UNAVAILABLE on a server already listening."""
    for _ in range(50):
        async with account.http.get(account.base + "/healthz") as answer:
            if answer.status == 200:
                return
        await asyncio.sleep(0.1)
    pytest.fail("the gateway never reached the server")


def require_browser(path: Path, ci: bool) -> None:
    """Skip when the browser is missing, except in CI, where a missing browser fails the test."""
    if path.exists():
        return
    message = f"{path} is missing: apt-get install chromium (make test does so as root)"
    if ci:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_browser(CHROMIUM, ci=os.environ.get("CI") == "true")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def expected_statuses() -> set[int]:
    """The HTTP error statuses a test provokes on purpose (a dead link's 400, say): the browser logs each
    failed fetch as a console error, which the page fixture would otherwise fail the test for."""
    return {401}


@pytest.fixture
async def page(browser: Browser, expected_statuses: set[int]) -> AsyncIterator[Page]:
    """A fresh page; it fails the test on any console error, such as a Content-Security-Policy refusal.

    Tests name it after `account`, so the page closes before the gateway stops: a fetch still in flight
    would otherwise log a refused connection."""
    async with watched_page(browser, expected_statuses) as page:
        yield page


@asynccontextmanager
async def watched_page(browser: Browser, expected_statuses: set[int]) -> AsyncIterator[Page]:
    """A page in a context of its own (another device, as far as the service can tell), failing the test
    on a console error other than the failed fetches of `expected_statuses`."""
    context = await browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        yield page
    finally:
        await context.close()
    # Statuses the page handles on purpose still log "Failed to load resource"; anything else is a bug.
    expected = tuple(f"status of {status}" for status in expected_statuses)
    assert [problem for problem in problems if not any(text in problem for text in expected)] == []
