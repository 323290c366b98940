"""The audit trail: each session change on its RPC's one access line, with request id and peer, never a
secret; outside an RPC, a line of its own."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.logs import JsonFormatter
from tests.conftest import PASSWORD
from tests.status import expect_error

MEMBERS = {"event", "user_id", "session_id", "ip", "request_id"}
ACCESS = {"rpc", "status", "duration_ms", "peer"}


def lines(caplog) -> list[dict[str, Any]]:
    return [json.loads(JsonFormatter().format(record)) for record in caplog.records]


class AccessLines(logging.Handler):
    """Counts the access lines as they are written. A refused call's line may come just after the client
    has its answer (grpc sends the status, then the interceptor's `finally` writes the line): await it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self._written = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self._written.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(60):
            while True:
                self._written.clear()
                if self.count >= count:
                    return
                await self._written.wait()


@pytest.fixture
def access_lines():
    handler = AccessLines()
    logger = logging.getLogger("authsvc.access")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def call_as(request_id: str, access_token: str | None = None) -> tuple[tuple[str, str], ...]:
    metadata = [("x-request-id", request_id)]
    if access_token is not None:
        metadata.append(("authorization", f"Bearer {access_token}"))
    return tuple(metadata)


async def test_a_full_flow_writes_each_audit_event_once_and_no_secret(auth_server, caplog, access_lines):
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

    await access_lines.until(11)
    written = lines(caplog)
    # One line per RPC, on the access logger: the audit members ride on it.
    assert [line["logger"] for line in written] == ["authsvc.access"] * 11
    assert all(set(line) >= MEMBERS | ACCESS for line in written)
    assert all(line["ip"] == "127.0.0.1" for line in written)
    uid = user.user_id
    assert [(e["event"], e["request_id"], e["user_id"], e["session_id"]) for e in written] == [
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
    assert next(e for e in written if e["event"] == "logout_all")["count"] == 1
    assert [e["rpc"].rsplit("/", 1)[1] for e in written] == [
        "Register", "Login", "Refresh", "Login", "RevokeSession", "Refresh",
        "Login", "Login", "Logout", "LogoutAll", "Login",
    ]  # fmt: skip
    # An event's level when above INFO: failed logins and reuse stay visible at AUTHSVC_LOG_LEVEL=warning.
    assert [(e["event"], e["level"]) for e in written if e["level"] != "info"] == [
        ("reuse_detected", "warning"),
        ("login_failed", "warning"),
    ]

    secrets = [PASSWORD, "wrong password"]
    for pair in (a0, a1, b, c, d):
        secrets += [pair.access_token, pair.refresh_token]
        # Any piece of a JWT (header, claims or signature) would be a leak too.
        secrets += pair.refresh_token.split(".")[1:] + pair.access_token.split(".")[1:]
    text = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    raw = "\n".join(repr(record.__dict__) for record in caplog.records)  # before the formatter's redaction
    leaked = [secret for secret in [*secrets, email] if secret in text or secret in raw]
    assert not leaked
    assert "$2b$" not in text  # no bcrypt hash


@pytest.mark.parametrize(
    ("sent", "logged"),
    [("abc-123", "abc-123"), ("x" * 500, "x" * 128), ("", None)],
)
async def test_the_request_id_is_bounded_and_absent_when_empty(auth_server, register, caplog, sent, logged):
    caplog.set_level(logging.INFO)
    await auth_server.stub.Register(
        auth_pb2.RegisterRequest(email="bob@example.com", password=PASSWORD),
        metadata=(("x-request-id", sent),),
    )
    (record,) = caplog.records
    assert (record.name, record.event, record.request_id) == ("authsvc.access", "register", logged)


async def test_an_rpc_without_an_event_writes_its_access_line_alone(auth_server, caplog, access_lines):
    caplog.set_level(logging.INFO)
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token="not a token")),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )
    await access_lines.until(1)
    (line,) = lines(caplog)
    assert line["status"] == "UNAUTHENTICATED" and line["level"] == "info"
    assert "event" not in line and "user_id" not in line


def test_an_event_outside_any_rpc_is_a_line_of_its_own(caplog):
    """The CLI and background work record events with no RPC to carry them."""
    caplog.set_level(logging.INFO)
    audit.record(
        "account_disabled", ClientInfo(request_id="cli"), user_id="u1", count=2, level=logging.WARNING
    )
    (line,) = lines(caplog)
    assert line["logger"] == "authsvc.audit" and line["level"] == "warning"
    assert line["message"] == "account disabled"
    assert {key: line[key] for key in MEMBERS | {"count"}} == {
        "event": "account_disabled",
        "user_id": "u1",
        "session_id": None,
        "ip": None,
        "request_id": "cli",
        "count": 2,
    }


async def test_an_event_recorded_after_its_rpc_answered_is_a_line_of_its_own(caplog):
    """A task the RPC started inherits its context, but the RPC's line is written by then: the event must
    not be lost."""
    caplog.set_level(logging.INFO)
    go_on = asyncio.Event()

    async def left_behind() -> None:
        await go_on.wait()
        audit.record("refresh", ClientInfo(), user_id="u1", session_id="s1")

    held = audit.hold_for_rpc()
    task = asyncio.create_task(left_behind())
    audit.record("logout", ClientInfo(), user_id="u1", session_id="s1")
    held.close()
    go_on.set()
    await task
    assert held.fields is not None and held.fields["event"] == "logout"
    (line,) = lines(caplog)
    assert (line["logger"], line["event"]) == ("authsvc.audit", "refresh")


def test_a_second_event_in_one_rpc_writes_the_first_on_its_own_line(caplog):
    caplog.set_level(logging.INFO)
    held = audit.hold_for_rpc()
    try:
        audit.record("introspect_denied", ClientInfo(request_id="r1"), level=logging.WARNING)
        audit.record("introspect_blocked", ClientInfo(request_id="r1"), level=logging.WARNING)
    finally:
        held.close()
    (line,) = lines(caplog)
    assert (line["logger"], line["event"], line["request_id"]) == ("authsvc.audit", "introspect_denied", "r1")
    assert held.fields is not None and held.fields["event"] == "introspect_blocked"
    assert held.level == logging.WARNING
