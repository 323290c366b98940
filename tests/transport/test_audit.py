"""The audit trail: one structured event per session change, with request id and peer, never a secret."""

from __future__ import annotations

import json
import logging

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.logs import JsonFormatter
from tests.conftest import PASSWORD
from tests.status import expect_error

MEMBERS = {"event", "user_id", "session_id", "ip", "request_id"}


def call_as(request_id: str, access_token: str | None = None) -> tuple[tuple[str, str], ...]:
    metadata = [("x-request-id", request_id)]
    if access_token is not None:
        metadata.append(("authorization", f"Bearer {access_token}"))
    return tuple(metadata)


async def test_a_full_flow_writes_each_audit_event_once_and_no_secret(auth_server, caplog):
    caplog.set_level(logging.INFO)
    stub = auth_server.stub
    email = "ada@example.com"
    user = await stub.Register(
        auth_pb2.RegisterRequest(email=email, password=PASSWORD), metadata=call_as("r1")
    )
    credentials = auth_pb2.LoginRequest(email=email, password=PASSWORD)
    a0 = await stub.Login(credentials, metadata=call_as("r2"))
    a1 = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=a0.refresh_token), metadata=call_as("r3"))
    b = await stub.Login(credentials, metadata=call_as("r4"))
    await stub.RevokeSession(
        auth_pb2.RevokeSessionRequest(session_id=b.session_id), metadata=call_as("r5", a1.access_token)
    )
    auth_server.clock.advance(11)  # past the grace window: the spent parent is now reuse
    await expect_error(
        stub.Refresh(auth_pb2.RefreshRequest(refresh_token=a0.refresh_token), metadata=call_as("r6")),
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )
    c = await stub.Login(credentials, metadata=call_as("r7"))
    d = await stub.Login(credentials, metadata=call_as("r8"))
    await stub.Logout(auth_pb2.LogoutRequest(refresh_token=c.refresh_token), metadata=call_as("r9"))
    await stub.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=call_as("r10", d.access_token))
    await expect_error(
        stub.Login(auth_pb2.LoginRequest(email=email, password="wrong password"), metadata=call_as("r11")),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )

    audit = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "authsvc.audit"]
    assert all(set(event) >= MEMBERS for event in audit)
    assert all(event["ip"] == "127.0.0.1" for event in audit)
    uid = user.user_id
    assert [(e["event"], e["request_id"], e["user_id"], e["session_id"]) for e in audit] == [
        ("register", "r1", uid, None),
        ("login", "r2", uid, a0.session_id),
        ("refresh", "r3", uid, a0.session_id),
        ("login", "r4", uid, b.session_id),
        ("session_revoked", "r5", uid, b.session_id),
        ("reuse_detected", "r6", uid, a0.session_id),
        ("login", "r7", uid, c.session_id),
        ("login", "r8", uid, d.session_id),
        ("logout", "r9", uid, c.session_id),
        ("logout_all", "r10", uid, d.session_id),
        ("login_failed", "r11", None, None),
    ]
    assert next(e for e in audit if e["event"] == "logout_all")["count"] == 1

    secrets = [PASSWORD, "wrong password"]
    for pair in (a0, a1, b, c, d):
        secrets += [pair.access_token, pair.refresh_token]
        # Any piece of a JWT (header, claims or signature) would be a leak too.
        secrets += pair.refresh_token.split(".")[1:] + pair.access_token.split(".")[1:]
    written = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    leaked = [secret for secret in secrets if secret in written]
    assert not leaked
    assert "$2b$" not in written  # no bcrypt hash


@pytest.mark.parametrize(
    ("sent", "logged"),
    [("abc-123", "abc-123"), ("x" * 500, "x" * 128), ("", None)],
)
async def test_the_request_id_is_bounded_and_absent_when_empty(auth_server, register, caplog, sent, logged):
    caplog.set_level(logging.INFO, logger="authsvc.audit")
    await auth_server.stub.Register(
        auth_pb2.RegisterRequest(email="bob@example.com", password=PASSWORD),
        metadata=(("x-request-id", sent),),
    )
    (record,) = [r for r in caplog.records if r.name == "authsvc.audit"]
    assert record.request_id == logged
