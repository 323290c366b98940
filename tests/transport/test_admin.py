"""SetUserDisabled over gRPC: admin-only by the users table, and a disabled account's tokens refused at once,
on this server and on a second replica over the same PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from google.protobuf import json_format

from authsvc.app.start import RunningServer, start_server
from tests import databases
from tests.conftest import PASSWORD, ManualClock, make_settings
from tests.status import expect_error

EMAIL = "ada@example.com"
ADMIN = "grace@example.com"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def set_disabled(stub, admin_pair, email: str, disabled: bool) -> auth_pb2.SetUserDisabledResponse:
    return await stub.SetUserDisabled(
        auth_pb2.SetUserDisabledRequest(email=email, disabled=disabled),
        metadata=bearer(admin_pair.access_token),
    )


async def expect_refused(stub, pair, reason: str) -> None:
    """Both tokens of `pair` refused: the access token (ListSessions) and the refresh token."""
    await expect_error(
        stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(pair.access_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason,
    )
    await expect_error(
        stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        reason,
    )


@pytest.fixture
async def admin(auth_server, register, login) -> auth_pb2.TokenPair:
    """Grace, made admin the way operators do (`authsvc users set-role`), logged in."""
    await register(ADMIN)
    await auth_server.running.services.admin.set_role(ADMIN, "admin")
    return await login(ADMIN)


async def test_an_admin_disables_an_account_and_its_tokens_are_refused_at_once(
    auth_server, register, login, admin
):
    user = await register()
    phone, laptop = await login(), await login()
    answer = await set_disabled(auth_server.stub, admin, EMAIL, True)
    assert json_format.MessageToDict(answer, preserving_proto_field_name=True) == {
        "user_id": user.user_id,
        "email": EMAIL,
        "disabled": True,
        "revoked_sessions": 2,
    }
    for pair in (phone, laptop):
        await expect_refused(auth_server.stub, pair, "SESSION_REVOKED")
        assert (
            await auth_server.stub.Introspect(auth_pb2.IntrospectRequest(token=pair.access_token))
        ).active is False


async def test_login_to_a_disabled_account_is_account_disabled_only_with_the_password(
    auth_server, register, login, admin
):
    await register()
    await set_disabled(auth_server.stub, admin, EMAIL, True)
    await expect_error(login(), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_DISABLED")
    await expect_error(
        login(password="not the password"), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
    )


async def test_an_enabled_account_logs_in_again(auth_server, register, login, admin):
    user = await register()
    await set_disabled(auth_server.stub, admin, EMAIL, True)
    answer = await set_disabled(auth_server.stub, admin, " Ada@Example.com", False)
    assert (answer.user_id, answer.email, answer.disabled, answer.revoked_sessions) == (
        user.user_id,
        EMAIL,
        False,
        0,
    )
    await login()


async def test_a_user_who_is_not_admin_is_admin_only(auth_server, register, login):
    await register()
    pair = await login()
    await expect_error(
        set_disabled(auth_server.stub, pair, EMAIL, True), grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY"
    )
    await login()


async def test_a_demoted_admins_token_is_admin_only_at_once(auth_server, register, admin):
    await register()
    await auth_server.running.services.admin.set_role(ADMIN, "user")
    await expect_error(
        set_disabled(auth_server.stub, admin, EMAIL, True), grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY"
    )


@pytest.mark.parametrize(
    ("email", "code", "reason"),
    [
        ("nobody@example.com", grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND"),
        ("not an email", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_EMAIL"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_EMAIL"),
    ],
)
async def test_an_unknown_or_malformed_email_is_refused(auth_server, admin, email, code, reason):
    await expect_error(set_disabled(auth_server.stub, admin, email, True), code, reason)


async def test_set_user_disabled_needs_a_bearer(auth_server, register):
    await register()
    await expect_error(
        auth_server.stub.SetUserDisabled(auth_pb2.SetUserDisabledRequest(email=EMAIL, disabled=True)),
        grpc.StatusCode.UNAUTHENTICATED,
        "NOT_AUTHENTICATED",
    )


# -- two replicas over one PostgreSQL database --------------------------------------------------------


@dataclass
class Replica:
    running: RunningServer
    stub: auth_pb2_grpc.AuthServiceAsyncStub


@pytest.fixture
async def two_replicas(postgres_database, tmp_path) -> AsyncIterator[list[Replica]]:
    """Two running servers on one PostgreSQL database, with one keys directory (as docs/operations.md
    deploys replicas)."""
    await databases.empty_database(postgres_database)
    clock = ManualClock()
    started: list[RunningServer] = []
    channels: list[grpc.aio.Channel] = []
    try:
        for name in ("a", "b"):
            settings = make_settings(
                tmp_path / f"data-{name}",
                database_url=postgres_database.url,
                keys_dir=tmp_path / "shared-keys",
            )
            started.append(await start_server(settings, clock=clock))
        channels = [grpc.aio.insecure_channel(running.target) for running in started]
        yield [
            Replica(running, auth_pb2_grpc.AuthServiceStub(channel))
            for running, channel in zip(started, channels, strict=True)
        ]
    finally:
        for channel in channels:
            await channel.close(None)
        for running in started:
            await running.stop(1)


@pytest.mark.slow
async def test_a_disable_on_one_replica_is_refused_by_the_other_at_once(two_replicas):
    a, b = two_replicas
    for email in (EMAIL, ADMIN):
        await a.stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
    on_b = await b.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=PASSWORD))
    await b.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(on_b.access_token))

    grace = await a.stub.Login(auth_pb2.LoginRequest(email=ADMIN, password=PASSWORD))
    assert a.running.services is not None
    await a.running.services.admin.set_role(ADMIN, "admin")  # what `authsvc users set-role` does
    answer = await set_disabled(a.stub, grace, EMAIL, True)
    assert answer.revoked_sessions == 1

    await expect_refused(b.stub, on_b, "SESSION_REVOKED")
    assert (await b.stub.Introspect(auth_pb2.IntrospectRequest(token=on_b.access_token))).active is False
    await expect_error(
        b.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=PASSWORD)),
        grpc.StatusCode.PERMISSION_DENIED,
        "ACCOUNT_DISABLED",
    )
    await set_disabled(b.stub, grace, EMAIL, False)  # and back, through the other replica
    await a.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=PASSWORD))
