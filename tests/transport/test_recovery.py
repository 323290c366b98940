"""Password reset and email verification through gRPC, with the links read from mail a real SMTP server
(aiosmtpd) received: the same answer for unknown emails, single-use and expiring tokens, a newer reset
voiding the older, throttling, and `email_verified` in the next access token and the profile."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.start import start_server
from tests.conftest import PASSWORD, ManualClock, ServerHandle, make_settings
from tests.mail.smtp_server import Received, SmtpServer
from tests.mailbox import link_in, token_of
from tests.status import expect_error

# Each waits for the courier to deliver a mail (real timers); tests/domain/test_recovery.py: the rules, fast.
pytestmark = pytest.mark.slow

FROM = "Authsvc <no-reply@auth.example.com>"
PUBLIC_URL = "https://auth.example.com"
EMAIL = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase"
RESET_REQUESTED = "If an account exists for this email, a reset link has been sent"
VERIFICATION_REQUESTED = "If your email is not verified yet, a verification link has been sent"
INVALID = grpc.StatusCode.INVALID_ARGUMENT

StartServer = Callable[..., Awaitable[ServerHandle]]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def mail_overrides(smtp_port: int) -> dict[str, Any]:
    return {
        "smtp_url": f"smtp://127.0.0.1:{smtp_port}?timeout=5",
        "mail_from": FROM,
        "public_url": PUBLIC_URL,
    }


@pytest.fixture
async def start(
    tmp_path: Path, database_url: str, clock: ManualClock, smtp: SmtpServer
) -> AsyncIterator[StartServer]:
    """Start a server mailing through `smtp`, with settings overridden as given."""
    started: list[ServerHandle] = []

    async def _start(**overrides: Any) -> ServerHandle:
        settings = make_settings(
            tmp_path / "data", database_url=database_url, **{**mail_overrides(smtp.port), **overrides}
        )
        running = await start_server(settings, clock=clock)
        channel = grpc.aio.insecure_channel(running.target)
        handle = ServerHandle(settings, clock, running, channel, auth_pb2_grpc.AuthServiceStub(channel))
        started.append(handle)
        return handle

    yield _start
    for handle in started:
        await handle.close()


@pytest.fixture
async def server(start: StartServer) -> ServerHandle:
    return await start()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def claims_of(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def signed_up(server: ServerHandle, email: str = EMAIL) -> auth_pb2.TokenPair:
    await server.stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
    return await server.stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))


async def forgot(server: ServerHandle, email: str = EMAIL) -> auth_pb2.ForgotPasswordResponse:
    return await server.stub.ForgotPassword(auth_pb2.ForgotPasswordRequest(email=email))


async def reset(
    server: ServerHandle, token: str, password: str = NEW_PASSWORD
) -> auth_pb2.ResetPasswordResponse:
    return await server.stub.ResetPassword(auth_pb2.ResetPasswordRequest(token=token, new_password=password))


async def verify(server: ServerHandle, token: str) -> auth_pb2.VerifyEmailResponse:
    return await server.stub.VerifyEmail(auth_pb2.VerifyEmailRequest(token=token))


async def mail_number(smtp: SmtpServer, n: int) -> Received:
    """The `n`-th mail (from 1) the SMTP server received, waiting for it."""
    return (await smtp.wait_for(n))[n - 1]


def link_of(received: Received) -> str:
    link = link_in(received.message)
    assert link is not None, received.message.as_string()
    return link


async def test_a_reset_link_mailed_for_a_known_email_sets_the_new_password_and_ends_every_session(
    server, smtp
):
    first = await signed_up(server)
    second = await server.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=PASSWORD))
    assert (await forgot(server, "  Ada@Example.com ")).message == RESET_REQUESTED
    received = await mail_number(smtp, 1)
    assert received.recipients == [EMAIL]
    assert received.message["From"] == FROM
    link = link_of(received)
    assert link.startswith(f"{PUBLIC_URL}/account/reset?token=")
    answer = await reset(server, token_of(link))
    assert (answer.message, answer.revoked_sessions) == ("Password has been reset", 2)
    for pair in (first, second):
        await expect_error(
            server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
    await expect_error(
        server.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=PASSWORD)),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    after = await server.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=NEW_PASSWORD))
    # The link reached the address, so the reset proved it the user's.
    assert claims_of(after.access_token)["email_verified"] is True


async def test_an_unknown_or_disabled_email_gets_the_same_answer_and_no_mail(server, smtp):
    await signed_up(server, "off@example.com")
    await server.running.store.set_user_disabled("off@example.com", True, server.clock())
    await signed_up(server)
    for email in ("nobody@example.com", "off@example.com"):
        assert (await forgot(server, email)).message == RESET_REQUESTED
    await forgot(server)
    # The known email's mail, asked for last, is the first and only one to arrive.
    received = await mail_number(smtp, 1)
    assert received.recipients == [EMAIL]
    await server.running.courier.deliver_due()  # nothing else is waiting to go out
    assert len(smtp.received) == 1


async def test_a_reset_token_is_single_use(server, smtp):
    await signed_up(server)
    await forgot(server)
    token = token_of(link_of(await mail_number(smtp, 1)))
    await reset(server, token)
    await expect_error(reset(server, token, "yet another passphrase"), INVALID, "RESET_TOKEN_INVALID")
    await server.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=NEW_PASSWORD))


async def test_a_reset_link_works_for_its_lifetime_and_not_after(server, smtp):
    await signed_up(server)
    await forgot(server)
    token = token_of(link_of(await mail_number(smtp, 1)))
    server.clock.advance(1799)
    await reset(server, token)
    await forgot(server)
    token = token_of(link_of(await mail_number(smtp, 2)))
    server.clock.advance(1800)
    await expect_error(reset(server, token), INVALID, "RESET_TOKEN_INVALID")


async def test_a_newer_reset_link_voids_the_older_one(server, smtp):
    await signed_up(server)
    await forgot(server)
    server.clock.advance(1)  # the courier sends in the order mails were queued
    await forgot(server)
    older, newer = (token_of(link_of(received)) for received in await smtp.wait_for(2))
    await expect_error(reset(server, older), INVALID, "RESET_TOKEN_INVALID")
    await reset(server, newer)


async def test_the_new_password_follows_the_registration_policy_before_the_token_is_looked_at(server):
    await expect_error(reset(server, "whatever", "short"), INVALID, "WEAK_PASSWORD")
    await expect_error(reset(server, "whatever", "x" * 73), INVALID, "PASSWORD_TOO_LONG")
    await expect_error(reset(server, "t" * 4097), INVALID, "TOKEN_TOO_LONG")
    await expect_error(reset(server, ""), INVALID, "RESET_TOKEN_INVALID")


async def test_wrong_reset_tokens_are_throttled_per_address(start, smtp):
    server = await start(reset_max_failures_per_address=3, reset_window_seconds=900)
    await signed_up(server)
    await forgot(server)
    good = token_of(link_of(await mail_number(smtp, 1)))
    for n in range(3):
        await expect_error(reset(server, f"guess-{n}"), INVALID, "RESET_TOKEN_INVALID")
    # Now even the right token waits for the window: a guesser cannot tell a hit by the answer.
    await expect_error(reset(server, good), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    server.clock.advance(900)
    await reset(server, good)


async def test_a_good_reset_token_gives_its_attempt_back(start, smtp):
    server = await start(reset_max_failures_per_address=2)
    await signed_up(server)
    for n in range(1, 4):
        await forgot(server)
        await reset(server, token_of(link_of(await mail_number(smtp, n))), f"passphrase number {n}")


async def test_reset_requests_are_throttled_per_email_known_or_not_and_per_address(start, smtp):
    server = await start(forgot_max_per_email=2, forgot_max_per_address=5)
    await signed_up(server)
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(2):
            await forgot(server, email)
        await expect_error(forgot(server, email), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    await forgot(server, "third@example.com")  # the address's fifth
    await expect_error(forgot(server, "fourth@example.com"), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    assert len(await smtp.wait_for(2)) == 2


async def test_an_invalid_email_is_refused(server):
    await expect_error(forgot(server, "not an email"), INVALID, "INVALID_EMAIL")


async def test_verifying_the_email_shows_in_the_next_access_token_and_the_profile(server, smtp):
    pair = await signed_up(server)
    assert claims_of(pair.access_token)["email_verified"] is False
    requested = await server.stub.RequestEmailVerification(
        auth_pb2.RequestEmailVerificationRequest(), metadata=bearer(pair.access_token)
    )
    assert requested.message == VERIFICATION_REQUESTED
    received = await mail_number(smtp, 1)
    assert received.recipients == [EMAIL]
    link = link_of(received)
    assert link.startswith(f"{PUBLIC_URL}/account/verify?token=")
    assert (await verify(server, token_of(link))).message == "Email verified"
    refreshed = await server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    assert claims_of(refreshed.access_token)["email_verified"] is True
    profile = await server.stub.GetProfile(
        auth_pb2.GetProfileRequest(), metadata=bearer(refreshed.access_token)
    )
    assert profile.email_verified


async def test_a_verified_email_gets_the_same_answer_and_no_second_mail(server, smtp):
    pair = await signed_up(server)
    request = auth_pb2.RequestEmailVerificationRequest()
    await server.stub.RequestEmailVerification(request, metadata=bearer(pair.access_token))
    await verify(server, token_of(link_of(await mail_number(smtp, 1))))
    again = await server.stub.RequestEmailVerification(request, metadata=bearer(pair.access_token))
    assert again.message == VERIFICATION_REQUESTED
    await forgot(server)
    assert "/account/reset?" in link_of(await mail_number(smtp, 2))  # the next mail is the reset


async def test_a_verification_token_is_single_use_and_expires(server, smtp):
    pair = await signed_up(server)
    request = auth_pb2.RequestEmailVerificationRequest()
    for _ in range(2):
        await server.stub.RequestEmailVerification(request, metadata=bearer(pair.access_token))
    first, second = (token_of(link_of(received)) for received in await smtp.wait_for(2))
    server.clock.advance(86_399)
    await verify(server, first)
    await expect_error(verify(server, first), INVALID, "VERIFICATION_TOKEN_INVALID")
    server.clock.advance(1)
    await expect_error(verify(server, second), INVALID, "VERIFICATION_TOKEN_INVALID")
    await expect_error(verify(server, "not a token"), INVALID, "VERIFICATION_TOKEN_INVALID")
    await expect_error(verify(server, ""), INVALID, "VERIFICATION_TOKEN_INVALID")


async def test_verification_requests_need_a_bearer_and_are_throttled_per_user(start, smtp):
    server = await start(verify_request_max_per_user=2)
    await expect_error(
        server.stub.RequestEmailVerification(auth_pb2.RequestEmailVerificationRequest()),
        grpc.StatusCode.UNAUTHENTICATED,
        "NOT_AUTHENTICATED",
    )
    pair = await signed_up(server)
    request = auth_pb2.RequestEmailVerificationRequest()
    for _ in range(2):
        await server.stub.RequestEmailVerification(request, metadata=bearer(pair.access_token))
    await expect_error(
        server.stub.RequestEmailVerification(request, metadata=bearer(pair.access_token)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "THROTTLED",
    )
