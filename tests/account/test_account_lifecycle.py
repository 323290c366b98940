"""The account page's account lifecycle in a real browser (Debian's Chromium, headless) against the real
gateway and server: creating an account, a forgotten password reset through the link of the mail the
server wrote, verifying the email through its mail, the display name, a password change that signs the
other device out, and deleting the account.

The links are opened as a person would open them from the mail; the page must then take the token out of
the address bar and send no Referer."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, Request, expect

from tests.account.conftest import EMAIL, Account, watched_page
from tests.account.test_account_page import SESSIONS_HEADING, signed_in
from tests.conftest import PASSWORD
from tests.mailbox import Mailbox, path_of, token_of

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a brand new passphrase"
FORGOT_ANSWER = "If an account exists for this email, a reset link has been sent. Check your inbox."


def mailbox_of(account: Account) -> Mailbox:
    return Mailbox(account.server.settings.data_dir)


def requests_to(page: Page, path: str) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request) if request.url.endswith(path) else None)
    return seen


async def test_creating_an_account_signs_in_and_asks_to_verify_the_email(
    account: Account, page: Page
) -> None:
    await page.goto(account.page_url)

    await page.get_by_role("button", name="Create an account").click()
    await expect(page.get_by_role("heading", name="Create an account")).to_be_focused()
    await page.get_by_label("Email", exact=True).fill("grace@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create account", exact=True).click()

    await expect(page.get_by_role("status")).to_have_text("Account created. You're signed in.")
    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_focused()
    await expect(page.get_by_text("Your email address isn't verified yet.")).to_be_visible()
    profile = page.get_by_role("region", name="Your profile")
    await expect(profile).to_contain_text("grace@example.com")
    await expect(profile).to_contain_text("Not yet")
    status, _ = await account.call(
        "POST", "/api/v1/auth/login", {"email": "grace@example.com", "password": PASSWORD}
    )
    assert status == 200


@pytest.mark.parametrize("expected_statuses", [{409}])
async def test_creating_an_account_with_a_taken_email_says_so(
    account: Account, page: Page, expected_statuses: set[int]
) -> None:
    await page.goto(account.page_url)
    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Email", exact=True).fill(EMAIL)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)

    await page.get_by_role("button", name="Create account", exact=True).click()

    await expect(page.get_by_role("status")).to_contain_text("An account with this email already exists.")
    await expect(page.get_by_label("Email", exact=True)).to_have_attribute("aria-invalid", "true")


async def test_a_forgotten_password_is_reset_through_the_mailed_link(account: Account, page: Page) -> None:
    other_device = await account.login_elsewhere()
    await page.goto(account.page_url)
    await page.get_by_role("button", name="Forgot your password?").click()
    await page.get_by_label("Email", exact=True).fill(EMAIL)
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("status")).to_have_text(FORGOT_ANSWER)

    link = await mailbox_of(account).next_link("reset", EMAIL)
    resets = requests_to(page, "/api/v1/auth/reset-password")
    await page.goto(account.base + path_of(link))

    # The token is read, then gone from the address bar (and so from history).
    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_focused()
    assert page.url == account.base + "/account/reset"
    form = page.get_by_role("region", name="Choose a new password")
    await form.get_by_label("New password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Set new password").click()

    await expect(page.get_by_role("status")).to_have_text(
        "Your password has been reset. 1 device was signed out. Sign in with your new password."
    )
    await expect(page.get_by_role("link", name="Sign in with your new password")).to_be_focused()
    [reset] = resets
    assert reset.post_data_json == {"token": token_of(link), "new_password": NEW_PASSWORD}
    assert "referer" not in await reset.all_headers()
    assert (await account.refresh_status(other_device["refresh_token"]))[0] == 401
    status, _ = await account.call("POST", "/api/v1/auth/login", {"email": EMAIL, "password": NEW_PASSWORD})
    assert status == 200

    await page.get_by_role("link", name="Sign in with your new password").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.url == account.page_url


@pytest.mark.parametrize("expected_statuses", [{400, 401}])
async def test_a_used_reset_link_offers_to_send_a_new_one(
    account: Account, page: Page, expected_statuses: set[int]
) -> None:
    await page.goto(account.base + "/account/reset?token=not-a-live-token")
    form = page.get_by_role("region", name="Choose a new password")
    await form.get_by_label("New password").fill(NEW_PASSWORD)
    await form.get_by_role("button", name="Set new password").click()

    await expect(page.get_by_role("status")).to_contain_text("This reset link doesn't work any more")
    await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    assert page.url == account.page_url


async def test_the_email_is_verified_through_the_mailed_link(account: Account, page: Page) -> None:
    await signed_in(page, account)
    banner = page.get_by_role("complementary")
    await expect(banner).to_contain_text("Your email address isn't verified yet.")

    await banner.get_by_role("button", name="Send the verification mail").click()
    await expect(page.get_by_role("status")).to_have_text(
        f"We sent a verification link to {EMAIL}. Open it to verify your address."
    )
    link = await mailbox_of(account).next_link("verify", EMAIL)
    verifications = requests_to(page, "/api/v1/auth/verify-email")
    await page.goto(account.base + path_of(link))

    assert page.url == account.base + "/account/verify"
    await page.get_by_role("button", name="Verify my email").click()

    await expect(page.get_by_role("status")).to_have_text("Email verified. Thank you.")
    [verification] = verifications
    assert verification.post_data_json == {"token": token_of(link)}
    assert "referer" not in await verification.all_headers()
    await page.get_by_role("link", name="Go to your account").click()
    await signed_in(page, account)
    await expect(page.get_by_role("complementary")).to_be_hidden()
    await expect(page.get_by_role("region", name="Your profile")).to_contain_text("Yes")


async def test_the_display_name_is_shown_and_edited(account: Account, page: Page) -> None:
    await signed_in(page, account)
    profile = page.get_by_role("region", name="Your profile")
    await expect(profile.get_by_label("Display name")).to_have_value("")

    await profile.get_by_label("Display name").fill("Ada Lovelace")
    await profile.get_by_role("button", name="Save name").click()

    await expect(page.get_by_role("status")).to_have_text("Display name saved: Ada Lovelace.")
    await expect(page.get_by_text(f"Signed in as Ada Lovelace ({EMAIL})")).to_be_visible()
    pair = await account.login_elsewhere()
    _, body = await account.call(
        "GET", "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert body["display_name"] == "Ada Lovelace"


async def test_changing_the_password_signs_the_other_device_out(
    account: Account, page: Page, browser: Browser, expected_statuses: set[int]
) -> None:
    async with watched_page(browser, expected_statuses) as other:
        await signed_in(other, account)
        await signed_in(page, account)
        change = page.get_by_role("region", name="Change your password")

        await change.get_by_label("Current password").fill(PASSWORD)
        await change.get_by_label("New password").fill(NEW_PASSWORD)
        await change.get_by_role("button", name="Change password").click()

        await expect(page.get_by_role("status")).to_have_text(
            "Password changed. 1 other device was signed out."
        )
        await expect(page.get_by_role("list", name=SESSIONS_HEADING).get_by_role("listitem")).to_have_count(1)
        await expect(change.get_by_label("Current password")).to_have_value("")

        await other.get_by_role("button", name="Refresh list").click()

        await expect(other.get_by_role("status")).to_contain_text("This device was signed out")
        await expect(other.get_by_label("Email", exact=True)).to_be_focused()
        await expect(other.get_by_role("heading", name=SESSIONS_HEADING)).to_be_hidden()


async def test_a_wrong_current_password_changes_nothing(account: Account, page: Page) -> None:
    await signed_in(page, account)
    change = page.get_by_role("region", name="Change your password")

    await change.get_by_label("Current password").fill("not the password")
    await change.get_by_label("New password").fill(NEW_PASSWORD)
    await change.get_by_role("button", name="Change password").click()

    await expect(page.get_by_role("status")).to_have_text(
        "That isn't your current password. Check it and try again."
    )
    await expect(change.get_by_label("Current password")).to_be_focused()
    await expect(page.get_by_role("heading", name=SESSIONS_HEADING)).to_be_visible()


async def test_deleting_the_account_asks_the_password_and_then_deletes_it(
    account: Account, page: Page
) -> None:
    await signed_in(page, account)
    danger = page.get_by_role("region", name="Delete your account")
    await danger.get_by_role("button", name="Delete account…").click()
    confirm = danger.get_by_label("Your password, to confirm")
    await expect(confirm).to_be_focused()

    await confirm.fill("not the password")
    await danger.get_by_role("button", name="Delete my account for good").click()
    await expect(page.get_by_role("status")).to_have_text(
        "That password isn't right. Your account was not deleted."
    )
    await confirm.fill(PASSWORD)
    await danger.get_by_role("button", name="Delete my account for good").click()

    await expect(page.get_by_role("status")).to_have_text(
        "Your account has been deleted, and every device signed out."
    )
    await expect(page.get_by_label("Email", exact=True)).to_be_focused()
    await expect(page.get_by_label("Email", exact=True)).to_have_value("")
    status, body = await account.call("POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})
    assert (status, body["reason"]) == (401, "INVALID_CREDENTIALS")


async def test_keeping_the_account_closes_the_confirmation(account: Account, page: Page) -> None:
    await signed_in(page, account)
    danger = page.get_by_role("region", name="Delete your account")
    await danger.get_by_role("button", name="Delete account…").click()

    await danger.get_by_role("button", name="Keep my account").click()

    await expect(danger.get_by_label("Your password, to confirm")).to_be_hidden()
    await expect(danger.get_by_role("button", name="Delete account…")).to_be_focused()
