"""The account page in a real browser (Debian's Chromium, headless) against the real gateway and server.

Each test reads the page as a person would: by label, role and accessible name, never by CSS class.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Locator, Page, Request, expect

from tests.account.conftest import ARTIFACTS, EMAIL, PHONE, Account
from tests.conftest import PASSWORD

pytestmark = pytest.mark.slow

SESSIONS_HEADING = "Where you're signed in"


async def sign_in(page: Page, account: Account, password: str = PASSWORD) -> None:
    await page.goto(account.page_url)
    await page.get_by_label("Email", exact=True).fill(EMAIL)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def signed_in(page: Page, account: Account) -> dict[str, Any]:
    """Sign in and wait for the list; answers the token pair the page received (it keeps it in memory)."""
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/login")) as login:
        await sign_in(page, account)
    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_visible()
    return dict(await (await login.value).json())


def devices(page: Page) -> Locator:
    return page.get_by_role("list", name=SESSIONS_HEADING).get_by_role("listitem")


def calls_to(page: Page, path: str) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if request.url.endswith(path) else None)
    return seen


async def focused_id(page: Page) -> str:
    return str(await page.evaluate("document.activeElement && document.activeElement.id"))


async def test_signing_in_with_the_keyboard_lists_this_device_and_moves_focus_to_the_list(
    account: Account, page: Page
) -> None:
    await page.goto(account.page_url)
    await page.get_by_label("Email", exact=True).focus()
    await page.keyboard.type(EMAIL)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_focused()
    await expect(devices(page)).to_have_count(1)
    this_device = devices(page).first
    await expect(this_device.get_by_role("heading")).to_have_text("Chrome on Linux")
    await expect(this_device.get_by_text("This device", exact=True)).to_be_visible()
    await expect(this_device).to_contain_text("127.0.0.1")
    await expect(this_device).to_contain_text("just now")
    await expect(page.get_by_role("status")).to_have_text("Signed in. You are signed in on 1 device.")
    await expect(page.get_by_role("button", name="Sign out Chrome on Linux (this device)")).to_be_visible()
    # Tokens live in memory only.
    stored = await page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""]


async def test_a_login_from_another_client_shows_as_a_second_device(account: Account, page: Page) -> None:
    await signed_in(page, account)
    await account.login_elsewhere()

    await page.get_by_role("button", name="Refresh list").click()

    await expect(devices(page)).to_have_count(2)
    await expect(devices(page).nth(0)).to_contain_text("This device")
    await expect(devices(page).nth(1).get_by_role("heading")).to_have_text("Firefox on Linux")
    await expect(devices(page).nth(1).get_by_text("This device", exact=True)).to_be_hidden()
    await expect(page.get_by_role("status")).to_have_text("List updated: 2 devices.")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.get_by_role("heading", name=SESSIONS_HEADING).blur()
    await page.screenshot(path=str(ARTIFACTS / "account-sessions.png"), full_page=True)
    await page.set_viewport_size(PHONE)
    # Readable at phone width: nothing wider than the screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.screenshot(path=str(ARTIFACTS / "account-sessions-phone.png"), full_page=True)
    assert (ARTIFACTS / "account-sessions.png").stat().st_size > 10_000


async def test_signing_the_other_device_out_ends_it_and_its_refresh_token_is_refused(
    account: Account, page: Page
) -> None:
    await signed_in(page, account)
    other = await account.login_elsewhere()
    await page.get_by_role("button", name="Refresh list").click()
    await expect(devices(page)).to_have_count(2)

    await page.get_by_role("button", name="Sign out Firefox on Linux").click()

    await expect(page.get_by_role("status")).to_have_text("Signed out Firefox on Linux.")
    await expect(devices(page)).to_have_count(1)
    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_focused()
    assert (await account.refresh_status(other["refresh_token"]))[0] == 401


async def test_signing_out_everywhere_returns_to_the_sign_in_form_and_ends_every_device(
    account: Account, page: Page
) -> None:
    mine = await signed_in(page, account)
    other = await account.login_elsewhere()

    await page.get_by_role("button", name="Sign out everywhere").click()

    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    await expect(page.get_by_label("Email", exact=True)).to_have_value(EMAIL)
    await expect(page.get_by_role("status")).to_have_text("You signed out everywhere (2 devices).")
    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_hidden()
    for pair in (mine, other):
        assert (await account.refresh_status(pair["refresh_token"]))[0] == 401


async def test_signing_out_here_ends_only_this_device(account: Account, page: Page) -> None:
    mine = await signed_in(page, account)
    other = await account.login_elsewhere()

    await page.get_by_role("button", name="Sign out here").click()

    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    await expect(page.get_by_role("status")).to_have_text("You signed out on this device.")
    assert (await account.refresh_status(mine["refresh_token"]))[0] == 401
    assert (await account.refresh_status(other["refresh_token"]))[0] == 200


async def test_a_wrong_password_says_so_and_keeps_the_form(account: Account, page: Page) -> None:
    await sign_in(page, account, password="not the password")

    status = page.get_by_role("status")
    await expect(status).to_have_text(
        "That email and password don't match an account. Check both and try again."
    )
    await expect(page.get_by_label("Password", exact=True)).to_be_focused()
    await expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_hidden()


async def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(
    account: Account, page: Page
) -> None:
    await signed_in(page, account)
    refreshes = calls_to(page, "/api/v1/auth/refresh")
    listings = calls_to(page, "/api/v1/auth/sessions")
    account.server.clock.advance(account.server.settings.access_ttl_seconds + 1)

    await page.get_by_role("button", name="Refresh list").click()

    await expect(page.get_by_role("status")).to_have_text("List updated: 1 device.")
    await expect(devices(page)).to_have_count(1)
    assert (len(refreshes), len(listings)) == (1, 2)


async def test_a_revoked_session_returns_to_the_sign_in_form_with_a_message(
    account: Account, page: Page
) -> None:
    await signed_in(page, account)
    other = await account.login_elsewhere()
    status, _ = await account.call(
        "POST", "/api/v1/auth/logout-all", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert status == 200
    refreshes = calls_to(page, "/api/v1/auth/refresh")

    await page.get_by_role("button", name="Refresh list").click()

    await expect(page.get_by_role("status")).to_contain_text("This device was signed out")
    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    assert refreshes == []


async def test_a_refused_refresh_returns_to_the_sign_in_form(account: Account, page: Page) -> None:
    mine = await signed_in(page, account)
    # Another client spends the page's refresh token, then the page's access token expires: the page's
    # own refresh is then a reuse, which ends the session.
    assert (await account.refresh_status(mine["refresh_token"]))[0] == 200
    account.server.clock.advance(account.server.settings.access_ttl_seconds + 60)
    refreshes = calls_to(page, "/api/v1/auth/refresh")

    await page.get_by_role("button", name="Refresh list").click()

    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    await expect(page.get_by_role("status")).to_contain_text("Please sign in again.")
    assert len(refreshes) == 1


def test_the_readme_screenshot_is_committed() -> None:
    readme_copy = ARTIFACTS.parent / "docs" / "account-page.png"
    assert readme_copy.stat().st_size > 10_000
