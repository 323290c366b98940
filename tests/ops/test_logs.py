"""Logs an operator can use: one access line per RPC (with its audit event), and never a token, a
password or a full email."""

from __future__ import annotations

import json
import logging

import grpc
from authsvc_proto.v1 import auth_pb2

from authsvc.logs import JsonFormatter, mask_email, redact
from tests.conftest import PASSWORD
from tests.status import expect_error

EMAIL = "ada.lovelace@example.com"
ACCESS_MEMBERS = {"time", "level", "request_id", "rpc", "status", "duration_ms", "peer"}


async def test_a_full_flow_logs_one_access_line_per_rpc_and_no_secret(auth_server, caplog):
    caplog.set_level(logging.INFO)
    stub = auth_server.stub
    secrets: list[str] = [PASSWORD, EMAIL]

    def rid(n: int) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", f"req-{n}"),)

    await stub.Register(auth_pb2.RegisterRequest(email=EMAIL, password=PASSWORD), metadata=rid(1))
    pair = await stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=PASSWORD), metadata=rid(2))
    child = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token), metadata=rid(3))
    await expect_error(
        stub.Login(auth_pb2.LoginRequest(email=EMAIL, password="not the password"), metadata=rid(4)),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    await stub.LogoutAll(
        auth_pb2.LogoutAllRequest(),
        metadata=(*rid(5), ("authorization", f"Bearer {child.access_token}")),
    )
    secrets += [pair.access_token, pair.refresh_token, child.access_token, child.refresh_token]
    secrets.append("not the password")

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    raw = [repr(record.__dict__) for record in caplog.records]  # before the formatter's redaction
    for secret in secrets:
        assert not any(secret in line for line in lines), secret
        assert not any(secret in text for text in raw), secret

    access = [json.loads(line) for line in lines]
    assert [(entry["request_id"], entry["rpc"].rsplit("/", 1)[1], entry["status"]) for entry in access] == [
        ("req-1", "Register", "OK"),
        ("req-2", "Login", "OK"),
        ("req-3", "Refresh", "OK"),
        ("req-4", "Login", "UNAUTHENTICATED"),
        ("req-5", "LogoutAll", "OK"),
    ]
    assert all(entry["logger"] == "authsvc.access" for entry in access)  # no second line per RPC
    assert all(set(entry) >= ACCESS_MEMBERS for entry in access)
    assert [(entry["event"], entry["level"]) for entry in access] == [
        ("register", "info"),
        ("login", "info"),
        ("refresh", "info"),
        ("login_failed", "warning"),
        ("logout_all", "info"),
    ]
    assert all(entry["peer"].startswith("ipv4:127.0.0.1:") for entry in access)
    assert all(entry["duration_ms"] >= 0 for entry in access)


def test_the_formatter_masks_emails_and_drops_token_shaped_strings_whatever_the_caller_logs():
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"
    record = logging.makeLogRecord({"msg": f"user {EMAIL} sent {token}", "levelname": "INFO"})
    line = JsonFormatter().format(record)
    assert EMAIL not in line and token not in line
    assert "a***@example.com" in line and "[redacted token]" in line


def test_emails_are_masked_to_their_first_letter_and_domain():
    assert mask_email("ada@example.com") == "a***@example.com"
    assert redact("a@b.example and zed@x.org") == "a***@b.example and z***@x.org"
