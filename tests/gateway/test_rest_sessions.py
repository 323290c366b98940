"""ListSessions, RevokeSession and the JWKS document through the gateway: GET and DELETE routes, path
variables, Timestamps and optional fields, all from the proto's annotations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway

SESSION_FIELDS = {
    "session_id",
    "created_at",
    "last_used_at",
    "expires_at",
    "user_agent",
    "ip_address",
    "current",
}


@pytest.fixture
async def base(auth_server: ServerHandle) -> AsyncIterator[str]:
    async with running_gateway(auth_server.target) as running:
        yield running.url


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> tuple[int, Any]:
    async with http.request(method, url, headers=headers or {}, json=json) as response:
        return response.status, await response.json()


async def _login(http: aiohttp.ClientSession, base: str, user_agent: str) -> dict[str, Any]:
    body = {"email": "ada@example.com", "password": PASSWORD}
    status, pair = await _call(http, "POST", base + "/api/v1/auth/login", {"User-Agent": user_agent}, body)
    assert status == 200, pair
    return dict(pair)


def _bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def test_list_sessions_shows_each_device_with_its_user_agent_address_and_rfc3339_times(
    http: aiohttp.ClientSession, base: str
) -> None:
    await _call(
        http, "POST", base + "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    phone = await _login(http, base, "Phone/1.0")
    laptop = await _login(http, base, "Laptop/2.0")

    status, body = await _call(http, "GET", base + "/api/v1/auth/sessions", _bearer(phone))

    assert status == 200
    sessions = {session["session_id"]: session for session in body["sessions"]}
    assert set(sessions) == {phone["session_id"], laptop["session_id"]}
    mine = sessions[phone["session_id"]]
    assert set(mine) == SESSION_FIELDS
    # The HTTP User-Agent reached the server as grpcgateway-user-agent; the HTTP client's address as
    # x-forwarded-for, both believed because the gateway showed its secret.
    assert (mine["user_agent"], mine["ip_address"], mine["current"]) == ("Phone/1.0", "127.0.0.1", True)
    assert sessions[laptop["session_id"]]["current"] is False
    for name in ("created_at", "last_used_at", "expires_at"):
        assert datetime.fromisoformat(mine[name].replace("Z", "+00:00")).tzinfo is not None


async def test_revoke_session_ends_that_device_only_and_a_second_revoke_is_404(
    http: aiohttp.ClientSession, base: str
) -> None:
    await _call(
        http, "POST", base + "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    phone = await _login(http, base, "Phone/1.0")
    laptop = await _login(http, base, "Laptop/2.0")
    url = base + f"/api/v1/auth/sessions/{laptop['session_id']}"

    assert await _call(http, "DELETE", url, _bearer(phone)) == (200, {"message": "Session revoked"})

    status, body = await _call(
        http, "POST", base + "/api/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]}
    )
    assert status == 401
    status, body = await _call(http, "DELETE", url, _bearer(phone))
    assert (status, body["code"], body["reason"]) == (404, "NOT_FOUND", "SESSION_NOT_FOUND")
    status, body = await _call(http, "GET", base + "/api/v1/auth/sessions", _bearer(phone))
    assert [session["session_id"] for session in body["sessions"]] == [phone["session_id"]]


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/auth/sessions"), ("DELETE", "/api/v1/auth/sessions/x")]
)
async def test_session_routes_without_authorization_are_403(
    http: aiohttp.ClientSession, base: str, method: str, path: str
) -> None:
    status, body = await _call(http, method, base + path)
    assert (status, body) == (
        403,
        {"detail": "Not authenticated", "code": "UNAUTHENTICATED", "reason": "NOT_AUTHENTICATED"},
    )


async def test_the_jwks_document_has_exactly_the_public_members(
    http: aiohttp.ClientSession, base: str
) -> None:
    status, body = await _call(http, "GET", base + "/.well-known/jwks.json")
    assert status == 200
    [key] = body["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


async def test_introspect_has_no_rest_route(http: aiohttp.ClientSession, base: str) -> None:
    status, body = await _call(http, "POST", base + "/api/v1/auth/introspect", json={"token": "x"})
    assert (status, body["code"]) == (404, "NOT_FOUND")
