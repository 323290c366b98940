"""The page's plain-words device names and readable times, computed by its own module in the browser."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.account.conftest import Account

pytestmark = pytest.mark.slow

DEVICES = [
    ("Firefox on Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"),
    (
        "Chrome on Windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/156.0.0.0 Safari/537.36",
    ),
    (
        "Edge on Windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0",
    ),
    (
        "Safari on iPhone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 19_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/19.0 Mobile/15E148 Safari/604.1",
    ),
    (
        "Safari on macOS",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/19.0 Safari/605.1.15",
    ),
    (
        "Chrome on Android",
        "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/156.0.0.0 Mobile Safari/537.36",
    ),
    (
        "Samsung Internet on Android",
        "Mozilla/5.0 (Linux; Android 15; SM-S931B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
    ),
    ("curl", "curl/8.11.1"),
    ("A Python program", "python-requests/2.32.3"),
    ("Unknown device", ""),
    ("MyApp", "MyApp/3.1 (build 77)"),
]

AGO = [
    ("just now", 20),
    ("5 minutes ago", 5 * 60),
    ("3 hours ago", 3 * 3600),
    ("yesterday", 26 * 3600),
    ("2 weeks ago", 15 * 86400),
]

# The same module instance the page runs: import it by the exact (versioned) URL the page linked.
_CALL = """async ([name, args]) => {
  const module = await import(document.querySelector('script[type="module"]').src);
  return module[name](...args);
}"""


async def _call(page: Page, name: str, *args: Any) -> Any:
    return await page.evaluate(_CALL, [name, list(args)])


async def test_user_agents_read_as_a_browser_on_a_system(account: Account, page: Page) -> None:
    await page.goto(account.page_url)

    names = [await _call(page, "describeDevice", agent) for _, agent in DEVICES]

    assert names == [name for name, _ in DEVICES]


async def test_last_active_reads_as_a_relative_time(account: Account, page: Page) -> None:
    await page.goto(account.page_url)
    readable = await page.evaluate(
        """async (ages) => {
          const module = await import(document.querySelector('script[type="module"]').src);
          const now = new Date();
          return ages.map((seconds) => module.ago(new Date(now.getTime() - seconds * 1000), now));
        }""",
        [seconds for _, seconds in AGO],
    )

    assert readable == [text for text, _ in AGO]
