"""Malformed HTTP over a raw socket: answered in the API's error shape with its headers, logged in one line.

aiohttp refuses these before any middleware runs; the gateway's protocol handler (authsvc/gateway/
protocol.py) answers them. Status 400 throughout, oversized lines included (see that module for why not
431); the connection is closed after the answer.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from dataclasses import dataclass

import aiohttp
import pytest

from authsvc.gateway import RunningGateway
from tests.gateway.fakes import FakeAuthServer
from tests.gateway.test_account_headers import assert_hardened

HOST = b"Host: gateway.test\r\n"


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


async def exchange(gateway: RunningGateway, *parts: bytes) -> RawAnswer:
    """Send `parts` on a fresh connection and read the answer until the server closes it (it must)."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return RawAnswer(int(status_line.split()[1]), headers, body)


def assert_one_info_line(records: list[logging.LogRecord], reason: str) -> None:
    assert [r for r in records if r.levelno >= logging.WARNING] == []
    assert [r for r in records if r.exc_info or r.exc_text] == []
    [line] = [r for r in records if r.levelno == logging.INFO]
    assert line.name == "authsvc.gateway"
    assert reason in line.getMessage()
    assert "\n" not in line.getMessage()


def assert_api_error(answer: RawAnswer, reason: str) -> None:
    assert answer.status == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, dict)
    assert set(body) == {"detail", "code", "reason"}
    assert (body["code"], body["reason"]) == ("INVALID_ARGUMENT", reason)
    assert len(answer.headers["X-Request-Id"]) == 32
    assert answer.headers["Cache-Control"] == "no-store"
    assert_hardened(answer.headers)


async def test_a_9000_byte_header_is_400_in_the_error_shape_and_one_info_line(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Padding: " + b"a" * 9000 + b"\r\n\r\n"
    answer = await exchange(fake_gateway, request)
    assert_api_error(answer, "REQUEST_HEAD_TOO_LARGE")
    assert answer.json()["detail"] == "The request line or a header field is over 8190 bytes"  # type: ignore[index]
    assert b"aaaa" not in answer.body  # the client's bytes are not echoed
    assert_one_info_line(_ours(caplog), "REQUEST_HEAD_TOO_LARGE")
    assert fake_server.calls == []


@pytest.mark.parametrize(
    "request_line",
    [
        b"GARBAGE\r\n",
        b"GET /healthz HTTP/9.9 extra\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n",  # TLS on the plain HTTP port
    ],
)
async def test_a_bad_request_line_is_400_in_the_error_shape_and_one_info_line(
    fake_gateway: RunningGateway, caplog: pytest.LogCaptureFixture, request_line: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await exchange(fake_gateway, request_line + HOST + b"\r\n")
    assert_api_error(answer, "MALFORMED_HTTP")
    assert answer.json()["detail"] == "Malformed HTTP request"  # type: ignore[index]
    assert_one_info_line(_ours(caplog), "MALFORMED_HTTP")


async def test_a_9000_byte_request_target_is_400_too(
    fake_gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await exchange(fake_gateway, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n")
    assert_api_error(answer, "REQUEST_HEAD_TOO_LARGE")
    assert_one_info_line(_ours(caplog), "REQUEST_HEAD_TOO_LARGE")


async def test_an_x_request_id_is_not_taken_from_a_request_that_did_not_parse(
    fake_gateway: RunningGateway,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nX-Request-Id: mine\r\nX-Padding: " + b"a" * 9000 + b"\r\n\r\n"
    answer = await exchange(fake_gateway, request)
    assert answer.headers["X-Request-Id"] != "mine"


async def test_a_body_in_a_broken_content_coding_is_400_and_one_info_line(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = gzip.compress(b'{"email": "ada@example.com"}')[:-12] + b"not gzip at all!"
    head = (
        b"POST /api/v1/auth/login HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    answer = await exchange(fake_gateway, head, body)
    assert_api_error(answer, "MALFORMED_HTTP")
    assert answer.json()["detail"] == "The request body could not be read"  # type: ignore[index]
    assert_one_info_line(_ours(caplog), "RequestPayloadError")
    assert fake_server.calls == []


async def test_a_client_leaving_mid_body_logs_no_error(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, writer = await asyncio.open_connection(fake_gateway.host, fake_gateway.port)
    writer.write(
        b"POST /api/v1/auth/login HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"email": '
    )
    await writer.drain()
    writer.close()
    await _wait_for_metric(http, fake_gateway, 'status="499"')
    assert [r for r in _ours(caplog) if r.levelno >= logging.WARNING or r.exc_info] == []


async def test_the_gateway_still_serves_after_malformed_requests(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        await exchange(fake_gateway, b"GARBAGE\r\n\r\n")
    async with http.get(fake_gateway.url + "/healthz") as response:
        assert response.status == 200


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("aiohttp", "authsvc"))]


async def _wait_for_metric(http: aiohttp.ClientSession, gateway: RunningGateway, needle: str) -> None:
    for _ in range(200):
        async with http.get(gateway.url + "/metrics") as response:
            if needle in await response.text():
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{needle} never appeared in /metrics")
