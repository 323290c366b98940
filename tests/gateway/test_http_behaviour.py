"""The gateway over real HTTP in front of a stand-in gRPC server: headers, errors, limits and recovery.

The stand-in answers whatever status a test asks for (throttling with RetryInfo, say), and records the
metadata the gateway sent, which the real server would not show.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from authsvc_proto.v1 import auth_pb2
from grpc_health.v1 import health_pb2

from authsvc import gateway_secret
from authsvc.gateway import RunningGateway, build_document, service_routes
from tests.addresses import GATEWAY_SECRET_FILE
from tests.gateway.conftest import TEST_DEADLINE_SECONDS, running_gateway
from tests.gateway.fakes import FakeAuthServer, failing, fake_auth_server

ERROR_KEYS = {"detail", "code", "reason"}
JSON = {"Content-Type": "application/json"}


async def _post(http: aiohttp.ClientSession, gateway: RunningGateway, path: str, **kwargs: object):
    return await http.post(gateway.url + path, **kwargs)  # type: ignore[arg-type]


async def test_a_call_forwards_authorization_user_agent_forwarded_for_and_request_id(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    headers = {
        "Authorization": "Bearer abc",
        "User-Agent": "app/1.0",
        "X-Forwarded-For": "203.0.113.7",
        "X-Request-Id": "req-123",
    }
    async with await _post(http, fake_gateway, "/api/v1/auth/logout-all", headers=headers) as response:
        assert response.status == 200
        assert response.headers["X-Request-Id"] == "req-123"
    [call] = fake_server.calls
    assert call.rpc == "LogoutAll"
    assert call.metadata["authorization"] == "Bearer abc"
    assert call.metadata["grpcgateway-user-agent"] == "app/1.0"
    # The HTTP peer, replacing what the client wrote (it is no trusted proxy), with the gateway secret.
    assert call.metadata["x-forwarded-for"] == "127.0.0.1"
    assert call.metadata["x-authsvc-gateway"] == gateway_secret.read(GATEWAY_SECRET_FILE)
    assert call.metadata["x-request-id"] == "req-123"


async def test_without_x_request_id_one_is_generated_sent_and_echoed(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with await _post(http, fake_gateway, "/api/v1/auth/login", json={"email": "a@b.co"}) as response:
        request_id = response.headers["X-Request-Id"]
    assert len(request_id) == 32
    assert fake_server.calls[0].metadata["x-request-id"] == request_id
    assert fake_server.calls[0].metadata["x-forwarded-for"] == "127.0.0.1"


async def test_answers_print_default_values_and_use_the_success_status(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async def registered(request: object, context: object) -> auth_pb2.RegisterResponse:
        return auth_pb2.RegisterResponse(user_id="u1", email="a@b.co")

    fake_server.answers["Register"] = registered
    async with await _post(http, fake_gateway, "/api/v1/auth/register", json={"email": "a@b.co"}) as response:
        assert (response.status, await response.json()) == (201, {"user_id": "u1", "email": "a@b.co"})
    async with await _post(
        http, fake_gateway, "/api/v1/auth/logout-all", headers={"Authorization": "x"}
    ) as response:
        assert await response.json() == {"message": "", "revoked_sessions": 0}


async def test_a_bearer_rpc_without_authorization_is_403_and_never_reaches_the_server(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with await _post(http, fake_gateway, "/api/v1/auth/logout-all") as response:
        assert response.status == 403
        assert await response.json() == {
            "detail": "Not authenticated",
            "code": "UNAUTHENTICATED",
            "reason": "NOT_AUTHENTICATED",
        }
        assert "X-Request-Id" in response.headers
    assert fake_server.calls == []


@pytest.mark.parametrize(
    ("code", "reason", "status", "header", "value"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", 401, "WWW-Authenticate", "Bearer"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED", 429, "Retry-After", "8"),
        (grpc.StatusCode.INVALID_ARGUMENT, "WEAK_PASSWORD", 400, None, None),
        (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN", 409, None, None),
        (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE", 503, None, None),
        (grpc.StatusCode.INTERNAL, "INTERNAL", 500, None, None),
    ],
)
async def test_a_server_status_becomes_its_http_status_body_and_headers(
    fake_server: FakeAuthServer,
    fake_gateway: RunningGateway,
    http: aiohttp.ClientSession,
    code: grpc.StatusCode,
    reason: str,
    status: int,
    header: str | None,
    value: str | None,
) -> None:
    fake_server.answers["Login"] = failing(code, "the message", reason, retry_seconds=7.2)
    async with await _post(http, fake_gateway, "/api/v1/auth/login", json={}) as response:
        assert response.status == status
        assert await response.json() == {"detail": "the message", "code": code.name, "reason": reason}
        if header is not None:
            assert response.headers[header] == value


@pytest.mark.parametrize(
    ("case", "body", "reason"),
    [
        ("invalid JSON", b'{"email": ', "INVALID_JSON"),
        ("a wrong field type", b'{"email": 42, "password": "longenough"}', "INVALID_FIELD"),
    ],
)
async def test_bad_bodies_are_400_without_a_call(
    fake_server: FakeAuthServer,
    fake_gateway: RunningGateway,
    http: aiohttp.ClientSession,
    case: str,
    body: bytes,
    reason: str,
) -> None:
    headers = {"Content-Type": "application/json"}
    async with await _post(http, fake_gateway, "/api/v1/auth/login", data=body, headers=headers) as response:
        assert response.status == 400
        payload = await response.json()
        assert (payload["code"], payload["reason"]) == ("INVALID_ARGUMENT", reason)
    assert fake_server.calls == []


async def test_a_body_over_64_kib_is_413(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    body = b'{"email": "' + b"a" * (65 * 1024) + b'"}'
    async with await _post(http, fake_gateway, "/api/v1/auth/login", data=body, headers=JSON) as response:
        assert response.status == 413
        assert set(await response.json()) == ERROR_KEYS
    assert fake_server.calls == []


async def test_a_body_of_exactly_64_kib_is_accepted(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    prefix, suffix = b'{"email": "', b'"}'
    body = prefix + b"a" * (64 * 1024 - len(prefix) - len(suffix)) + suffix
    async with await _post(http, fake_gateway, "/api/v1/auth/login", data=body, headers=JSON) as response:
        assert response.status == 200


async def test_a_chunked_body_over_64_kib_is_413(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(70):
            yield b" " * 1024

    async with await _post(http, fake_gateway, "/api/v1/auth/login", data=chunks(), headers=JSON) as response:
        assert response.status == 413
        assert set(await response.json()) == ERROR_KEYS


async def test_an_unknown_path_is_404_and_a_wrong_verb_405_in_the_error_shape(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(fake_gateway.url + "/api/v1/nothing-here") as response:
        assert response.status == 404
        assert await response.json() == {
            "detail": "Not found",
            "code": "NOT_FOUND",
            "reason": "ROUTE_NOT_FOUND",
        }
        assert "X-Request-Id" in response.headers
    async with http.get(fake_gateway.url + "/api/v1/auth/login") as response:
        assert response.status == 405
        assert (await response.json())["reason"] == "METHOD_NOT_ALLOWED"
        assert response.headers["Allow"] == "POST"


async def test_healthz_follows_the_grpc_health_service(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(fake_gateway.url + "/healthz") as response:
        assert (response.status, await response.json()) == (200, {"status": "SERVING"})
    await fake_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    async with http.get(fake_gateway.url + "/healthz") as response:
        assert response.status == 503
        assert (await response.json())["code"] == "UNAVAILABLE"


async def test_the_openapi_document_is_served(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(fake_gateway.url + "/api/v1/openapi.json") as response:
        assert response.status == 200
        assert await response.json() == build_document(service_routes())


async def test_server_down_is_a_quick_503_and_the_gateway_recovers_when_it_returns(
    http: aiohttp.ClientSession,
) -> None:
    async with fake_auth_server() as first:
        port = first.port
    async with running_gateway(f"127.0.0.1:{port}") as gateway:
        started = time.monotonic()
        async with await _post(http, gateway, "/api/v1/auth/login", json={}) as response:
            assert response.status == 503
            assert await response.json() == {
                "detail": "The authentication service is unavailable",
                "code": "UNAVAILABLE",
                "reason": "SERVICE_UNAVAILABLE",
            }
        assert time.monotonic() - started < TEST_DEADLINE_SECONDS
        async with http.get(gateway.url + "/healthz") as response:
            assert response.status == 503

        async with fake_auth_server(port):
            status = await _status_within(http, gateway, seconds=5.0)
        assert status == 200


async def _status_within(http: aiohttp.ClientSession, gateway: RunningGateway, seconds: float) -> int:
    """Poll until a call succeeds: the channel reconnects after its (short) backoff."""
    deadline = time.monotonic() + seconds
    while True:
        async with await _post(http, gateway, "/api/v1/auth/login", json={}) as response:
            if response.status == 200 or time.monotonic() > deadline:
                return int(response.status)
        await asyncio.sleep(0.1)


async def test_an_unexpected_gateway_failure_is_a_generic_500_in_the_error_shape(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(message: object) -> dict[str, object]:
        raise RuntimeError("SELECT * FROM secrets")

    monkeypatch.setattr("authsvc.gateway.app.message_to_json", broken)
    async with await _post(http, fake_gateway, "/api/v1/auth/login", json={}) as response:
        assert response.status == 500
        assert await response.json() == {"detail": "Internal error", "code": "INTERNAL", "reason": "INTERNAL"}
        assert "X-Request-Id" in response.headers


async def test_a_server_that_does_not_answer_in_time_is_504_at_the_deadline(
    fake_server: FakeAuthServer, http: aiohttp.ClientSession
) -> None:
    async def hung(request: object, context: object) -> auth_pb2.TokenPair:
        await asyncio.sleep(5)
        return auth_pb2.TokenPair()

    fake_server.answers["Login"] = hung
    async with running_gateway(fake_server.target, deadline=0.5) as gateway:
        started = time.monotonic()
        async with await _post(http, gateway, "/api/v1/auth/login", json={}) as response:
            assert response.status == 504
            assert await response.json() == {
                "detail": "The authentication service did not answer in time",
                "code": "DEADLINE_EXCEEDED",
                "reason": "TIMEOUT",
            }
        assert 0.4 < time.monotonic() - started < 2.0
