"""The caller's own account over gRPC: GetProfile, UpdateProfile, ChangePassword and DeleteAccount, each
with `authorization: Bearer <access token>`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any, TypeVar

import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2
from google.protobuf import json_format
from sqlalchemy import Connection, func, select, update

from authsvc.logs import JsonFormatter
from authsvc.store.outbox import OutgoingMail
from authsvc.store.outbox_sql import SqlOutbox
from authsvc.store.schema import sessions, users
from tests.conftest import PASSWORD
from tests.status import expect_error

T = TypeVar("T")
EMAIL = "ada@example.com"
NEW_PASSWORD = "a new and longer passphrase"
WRONG = "not the password"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def as_gateway_json(message) -> dict[str, object]:
    # The REST gateway's printing options.
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


async def run_sql(auth_server: Any, operation: Callable[[Connection], T]) -> T:
    """Run `operation(connection)` in one transaction on the server's own database."""
    return await auth_server.running.store.runner.run(operation)


async def mark_verified(auth_server, email: str) -> None:
    def verify(connection: Connection) -> None:
        connection.execute(
            update(users).where(users.c.email == email).values(email_verified_at=auth_server.clock.now)
        )

    await run_sql(auth_server, verify)


@pytest.fixture
async def ada(register, login) -> auth_pb2.TokenPair:
    """Ada, registered and logged in once."""
    await register()
    return await login()


# -- the profile --------------------------------------------------------------------------------------


async def test_the_profile_of_a_new_account(auth_server, register, ada):
    answer = await auth_server.stub.GetProfile(
        auth_pb2.GetProfileRequest(), metadata=bearer(ada.access_token)
    )
    shown = as_gateway_json(answer)
    assert shown.pop("user_id")
    assert shown == {
        "email": EMAIL,
        "email_verified": False,
        "display_name": "",
        "role": "user",
        "created_at": auth_server.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert answer.created_at.ToDatetime(UTC) == auth_server.clock.now


async def test_the_profile_shows_a_verified_email_from_the_row(auth_server, ada):
    await mark_verified(auth_server, EMAIL)
    answer = await auth_server.stub.GetProfile(
        auth_pb2.GetProfileRequest(), metadata=bearer(ada.access_token)
    )
    assert answer.email_verified is True


async def test_a_display_name_is_trimmed_kept_and_shown(auth_server, ada):
    stub = auth_server.stub
    updated = await stub.UpdateProfile(
        auth_pb2.UpdateProfileRequest(display_name="  Ada Lovelace "), metadata=bearer(ada.access_token)
    )
    assert (updated.display_name, updated.email) == ("Ada Lovelace", EMAIL)
    await auth_server.restart()
    shown = await auth_server.stub.GetProfile(auth_pb2.GetProfileRequest(), metadata=bearer(ada.access_token))
    assert shown.display_name == "Ada Lovelace"


@pytest.mark.parametrize("name", ["x" * 101, "Ada\nLovelace", "Ada\x00"])
async def test_a_display_name_too_long_or_with_control_characters_is_refused(auth_server, ada, name):
    await expect_error(
        auth_server.stub.UpdateProfile(
            auth_pb2.UpdateProfileRequest(display_name=name), metadata=bearer(ada.access_token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "DISPLAY_NAME_INVALID",
    )


@pytest.mark.parametrize(
    ("rpc", "request_message"),
    [
        ("GetProfile", auth_pb2.GetProfileRequest()),
        ("UpdateProfile", auth_pb2.UpdateProfileRequest(display_name="Ada")),
        (
            "ChangePassword",
            auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
        ),
        ("DeleteAccount", auth_pb2.DeleteAccountRequest(password=PASSWORD)),
    ],
)
async def test_every_account_rpc_needs_a_bearer(auth_server, ada, rpc, request_message):
    call = getattr(auth_server.stub, rpc)
    await expect_error(call(request_message), grpc.StatusCode.UNAUTHENTICATED, "NOT_AUTHENTICATED")
    await expect_error(
        call(request_message, metadata=bearer(ada.refresh_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )


# -- changing the password ----------------------------------------------------------------------------


async def change_password(auth_server, pair, current: str, new: str = NEW_PASSWORD):
    return await auth_server.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=current, new_password=new),
        metadata=bearer(pair.access_token),
    )


async def test_changing_the_password_ends_the_other_sessions_and_keeps_the_callers(
    auth_server, register, login
):
    await register()
    here, phone, laptop = await login(), await login(), await login()
    answer = await change_password(auth_server, here, PASSWORD)
    assert as_gateway_json(answer) == {"message": "Password changed successfully", "revoked_sessions": 2}
    stub = auth_server.stub
    listed = await stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(here.access_token))
    assert [s.session_id for s in listed.sessions] == [here.session_id]
    await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=here.refresh_token))
    for other in (phone, laptop):
        await expect_error(
            stub.Refresh(auth_pb2.RefreshRequest(refresh_token=other.refresh_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
        await expect_error(
            stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(other.access_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
    await expect_error(login(), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    await login(password=NEW_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "code", "reason"),
    [
        (WRONG, NEW_PASSWORD, grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"),
        ("", NEW_PASSWORD, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
        (PASSWORD, "short", grpc.StatusCode.INVALID_ARGUMENT, "WEAK_PASSWORD"),
        (PASSWORD, "x" * 73, grpc.StatusCode.INVALID_ARGUMENT, "PASSWORD_TOO_LONG"),
    ],
)
async def test_a_refused_change_leaves_the_password_and_sessions_alone(
    auth_server, register, login, current, new, code, reason
):
    await register()
    here, other = await login(), await login()
    await expect_error(change_password(auth_server, here, current, new), code, reason)
    await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=other.refresh_token))
    await login()


async def test_wrong_current_passwords_are_throttled_with_login(auth_server, ada, login):
    for _ in range(auth_server.settings.login_max_failures_per_account):
        await expect_error(
            change_password(auth_server, ada, WRONG), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
        )
    await expect_error(
        change_password(auth_server, ada, PASSWORD), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED"
    )
    await expect_error(login(), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")


# -- email_verified in access tokens ------------------------------------------------------------------


async def test_access_tokens_and_introspection_carry_the_rows_verification(auth_server, ada, login):
    stub = auth_server.stub
    before = await stub.Introspect(auth_pb2.IntrospectRequest(token=ada.access_token))
    assert (before.active, before.email_verified) == (True, False)
    await mark_verified(auth_server, EMAIL)
    # A token says what the row said when it was minted: the old one still says unverified.
    assert (await stub.Introspect(auth_pb2.IntrospectRequest(token=ada.access_token))).email_verified is False
    for pair in (await login(), await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=ada.refresh_token))):
        answer = await stub.Introspect(auth_pb2.IntrospectRequest(token=pair.access_token))
        assert (answer.active, answer.email_verified) == (True, True)
        assert jwt.decode(pair.access_token, options={"verify_signature": False})["email_verified"] is True


# -- deleting the account -----------------------------------------------------------------------------


async def delete_account(auth_server, pair, password: str = PASSWORD):
    return await auth_server.stub.DeleteAccount(
        auth_pb2.DeleteAccountRequest(password=password), metadata=bearer(pair.access_token)
    )


async def rows_of(auth_server, user_id: str) -> tuple[int, int]:
    """How many users and sessions rows the database holds for `user_id`."""

    def count(connection: Connection) -> tuple[int, int]:
        user_rows = connection.execute(select(func.count()).where(users.c.id == user_id)).scalar_one()
        session_rows = connection.execute(
            select(func.count()).select_from(sessions).where(sessions.c.user_id == user_id)
        ).scalar_one()
        return user_rows, session_rows

    return await run_sql(auth_server, count)


async def test_deleting_the_account_refuses_its_tokens_at_once_and_deletes_its_rows(
    auth_server, register, login, caplog
):
    caplog.set_level(logging.INFO)  # the event rides on DeleteAccount's access line
    user = await register()
    here, other = await login(), await login()
    outbox = SqlOutbox(auth_server.running.store.runner)
    now = auth_server.clock.now
    for_ada = OutgoingMail(EMAIL, "Verify your email", "a link", None, now)
    for_bob = OutgoingMail("bob@example.com", "Verify your email", "a link", None, now)
    for mail in (for_ada, for_bob):
        await outbox.enqueue(mail)

    answer = await delete_account(auth_server, here)
    assert as_gateway_json(answer) == {"message": "Account deleted"}
    stub = auth_server.stub
    for pair in (here, other):
        await expect_error(
            stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(pair.access_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
        await expect_error(
            stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
        assert (await stub.Introspect(auth_pb2.IntrospectRequest(token=pair.access_token))).active is False
    await expect_error(login(), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert await rows_of(auth_server, user.user_id) == (0, 0)
    assert await outbox.find(for_ada.id) is None
    assert await outbox.find(for_bob.id) is not None

    written = [json.loads(JsonFormatter().format(record)) for record in caplog.records]
    (deleted,) = [event for event in written if event.get("event") == "account_deleted"]
    assert deleted["user_id"] == user.user_id
    assert EMAIL not in json.dumps(written)


async def test_the_email_of_a_deleted_account_can_register_again(auth_server, register, ada):
    first = await auth_server.stub.GetProfile(auth_pb2.GetProfileRequest(), metadata=bearer(ada.access_token))
    await delete_account(auth_server, ada)
    again = await register()
    assert again.user_id != first.user_id


@pytest.mark.parametrize(
    ("password", "code", "reason"),
    [
        (WRONG, grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
        ("x" * 73, grpc.StatusCode.INVALID_ARGUMENT, "PASSWORD_TOO_LONG"),
    ],
)
async def test_a_refused_deletion_deletes_nothing(auth_server, register, ada, password, code, reason):
    user = await auth_server.stub.GetProfile(auth_pb2.GetProfileRequest(), metadata=bearer(ada.access_token))
    await expect_error(delete_account(auth_server, ada, password), code, reason)
    assert await rows_of(auth_server, user.user_id) == (1, 1)
    await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=ada.refresh_token))


async def test_wrong_passwords_at_deletion_are_throttled_with_login(auth_server, ada, login):
    for _ in range(auth_server.settings.login_max_failures_per_account):
        await expect_error(
            delete_account(auth_server, ada, WRONG), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
        )
    await expect_error(delete_account(auth_server, ada), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    await expect_error(login(), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
