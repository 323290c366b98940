"""ListSessions and RevokeSession: a user sees their devices and ends one, and nobody else's."""

from __future__ import annotations

from datetime import UTC, timedelta

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2
from google.protobuf import json_format

from tests.addresses import as_gateway
from tests.status import expect_error


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def list_sessions(auth_server):
    async def _list(access_token: str) -> list[auth_pb2.SessionInfo]:
        answer = await auth_server.stub.ListSessions(
            auth_pb2.ListSessionsRequest(), metadata=bearer(access_token)
        )
        return list(answer.sessions)

    return _list


@pytest.fixture
def revoke(auth_server):
    async def _revoke(access_token: str, session_id: str) -> auth_pb2.RevokeSessionResponse:
        return await auth_server.stub.RevokeSession(
            auth_pb2.RevokeSessionRequest(session_id=session_id), metadata=bearer(access_token)
        )

    return _revoke


async def test_list_shows_each_live_session_newest_first_with_the_callers_marked_current(
    auth_server, register, login, list_sessions
):
    await register()
    # Each device's user agent, as the REST gateway forwards it (with its secret).
    phone = await login(metadata=as_gateway(("grpcgateway-user-agent", "Phone/1.0")))
    auth_server.clock.advance(60)
    laptop = await login(metadata=as_gateway(("grpcgateway-user-agent", "Laptop/2.0")))
    sessions = await list_sessions(phone.access_token)
    assert [(s.session_id, s.user_agent, s.current) for s in sessions] == [
        (laptop.session_id, "Laptop/2.0", False),
        (phone.session_id, "Phone/1.0", True),
    ]


async def test_list_reports_times_and_the_client_address(auth_server, register, login, list_sessions):
    await register()
    pair = await login()
    (session,) = await list_sessions(pair.access_token)
    opened = auth_server.clock.now
    assert session.created_at.ToDatetime(tzinfo=UTC) == opened
    assert session.last_used_at.ToDatetime(tzinfo=UTC) == opened
    assert session.expires_at.ToDatetime(tzinfo=UTC) == opened + timedelta(days=30)
    assert session.ip_address == "127.0.0.1"


async def test_a_refresh_moves_last_used_forward(auth_server, register, login, list_sessions):
    await register()
    pair = await login()
    auth_server.clock.advance(120)
    renewed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    (session,) = await list_sessions(renewed.access_token)
    assert session.last_used_at.ToDatetime(tzinfo=UTC) == auth_server.clock.now
    assert session.created_at.ToDatetime(tzinfo=UTC) == auth_server.clock.now - timedelta(seconds=120)


async def test_the_list_leaves_out_ended_sessions_and_other_users(
    auth_server, register, login, list_sessions
):
    await register("ada@example.com")
    await register("bob@example.com")
    gone = await login("ada@example.com")
    await auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=gone.refresh_token))
    kept = await login("ada@example.com")
    await login("bob@example.com")
    sessions = await list_sessions(kept.access_token)
    assert [s.session_id for s in sessions] == [kept.session_id]


async def test_without_the_gateway_header_the_grpc_user_agent_is_listed(
    auth_server, register, login, list_sessions
):
    await register()
    pair = await login()
    (session,) = await list_sessions(pair.access_token)
    assert session.HasField("user_agent") and "grpc" in session.user_agent


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [((), "NOT_AUTHENTICATED"), ((("authorization", "Bearer nope"),), "TOKEN_INVALID")],
)
async def test_listing_needs_a_valid_access_token(auth_server, metadata, reason):
    await expect_error(
        auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=metadata),
        grpc.StatusCode.UNAUTHENTICATED,
        reason,
    )


async def test_revoking_a_device_ends_its_refresh_and_access_tokens_at_once(
    auth_server, register, login, revoke, list_sessions
):
    await register()
    phone, laptop = await login(), await login()
    answer = await revoke(laptop.access_token, phone.session_id)
    assert answer.message == "Session revoked"
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=phone.refresh_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "SESSION_REVOKED",
    )
    await expect_error(list_sessions(phone.access_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
    assert [s.session_id for s in await list_sessions(laptop.access_token)] == [laptop.session_id]


async def test_revoking_ones_own_current_session_works_and_ends_it(auth_server, register, login, revoke):
    await register()
    pair = await login()
    await revoke(pair.access_token, pair.session_id)
    await expect_error(
        revoke(pair.access_token, pair.session_id), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED"
    )


async def test_the_revocation_keeps_the_row_with_its_time_and_reason(auth_server, register, login, revoke):
    await register()
    phone, laptop = await login(), await login()
    await revoke(laptop.access_token, phone.session_id)
    row = await auth_server.running.store.get_session(phone.session_id)
    assert (row.revoked_at, row.revoked_reason) == (auth_server.clock.now, "revoked_by_user")


async def _not_found_details(call) -> str | None:
    error = await expect_error(call, grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")
    return error.details()


async def test_another_users_a_missing_and_an_already_revoked_session_are_not_found_alike(
    auth_server, register, login, revoke
):
    await register("ada@example.com")
    await register("bob@example.com")
    ada, ada_old = await login("ada@example.com"), await login("ada@example.com")
    bob = await login("bob@example.com")
    await revoke(ada.access_token, ada_old.session_id)
    answers = {
        await _not_found_details(revoke(ada.access_token, bob.session_id)),
        await _not_found_details(revoke(ada.access_token, "00000000-0000-0000-0000-000000000000")),
        await _not_found_details(revoke(ada.access_token, ada_old.session_id)),
        await _not_found_details(revoke(ada.access_token, "x" * 500)),
    }
    assert len(answers) == 1
    # Bob's session was not touched.
    await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=bob.refresh_token))


async def test_revoking_without_a_session_id_is_invalid_argument(register, login, revoke):
    await register()
    pair = await login()
    await expect_error(revoke(pair.access_token, ""), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


async def test_revoking_needs_a_bearer(auth_server):
    await expect_error(
        auth_server.stub.RevokeSession(auth_pb2.RevokeSessionRequest(session_id="abc")),
        grpc.StatusCode.UNAUTHENTICATED,
        "NOT_AUTHENTICATED",
    )


async def test_the_rest_json_has_the_spec_members_with_rfc3339_times(
    auth_server, register, login, list_sessions
):
    await register()
    pair = await login(metadata=as_gateway(("grpcgateway-user-agent", "Firefox/140")))
    answer = auth_pb2.ListSessionsResponse(sessions=await list_sessions(pair.access_token))
    document = json_format.MessageToDict(
        answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    (session,) = document["sessions"]
    assert set(session) == {
        "session_id",
        "created_at",
        "last_used_at",
        "expires_at",
        "user_agent",
        "ip_address",
        "current",
    }
    opened = auth_server.clock.now
    assert session["created_at"] == opened.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (session["user_agent"], session["current"]) == ("Firefox/140", True)
