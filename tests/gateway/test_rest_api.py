"""docs/api.md's REST cases, exactly, over real HTTP through the real gateway to the real gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from authsvc.gateway import RunningGateway
from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway

TOKEN_PAIR_FIELDS = {
    "access_token",
    "refresh_token",
    "token_type",
    "expires_in",
    "refresh_expires_in",
    "session_id",
}


@pytest.fixture
async def gateway(auth_server: ServerHandle) -> AsyncIterator[RunningGateway]:
    async with running_gateway(auth_server.target) as running:
        yield running


class Api:
    """The REST API as an HTTP client sees it: (status, JSON body, headers) per call."""

    def __init__(self, http: aiohttp.ClientSession, gateway: RunningGateway) -> None:
        self.http = http
        self.base = gateway.url + "/api/v1/auth"

    async def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, CIMultiDict[str]]:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not None:
            kwargs["json"] = body
        async with self.http.post(self.base + path, **kwargs) as response:
            return response.status, await response.json(), CIMultiDict(response.headers)

    async def register(self, email: str = "ada@example.com") -> tuple[int, Any, CIMultiDict[str]]:
        return await self.post("/register", {"email": email, "password": PASSWORD})

    async def login(self, email: str = "ada@example.com", password: str = PASSWORD) -> dict[str, Any]:
        status, body, _ = await self.post("/login", {"email": email, "password": password})
        assert status == 200, body
        return dict(body)


@pytest.fixture
def api(http: aiohttp.ClientSession, gateway: RunningGateway) -> Api:
    return Api(http, gateway)


def _bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def test_register_answers_201_with_the_user_id_and_the_normalised_email(api: Api) -> None:
    status, body, _ = await api.register("  Ada@Example.COM ")
    assert status == 201
    assert set(body) == {"user_id", "email"}
    assert body["email"] == "ada@example.com"
    assert isinstance(body["user_id"], str) and body["user_id"]


async def test_registering_a_taken_email_is_409_email_taken(api: Api) -> None:
    await api.register()
    status, body, _ = await api.register("ADA@example.com")
    assert status == 409
    assert (body["code"], body["reason"]) == ("ALREADY_EXISTS", "EMAIL_TAKEN")
    assert set(body) == {"detail", "code", "reason"}


async def test_a_weak_password_is_400_weak_password(api: Api) -> None:
    status, body, _ = await api.post("/register", {"email": "ada@example.com", "password": "short"})
    assert status == 400
    assert (body["code"], body["reason"]) == ("INVALID_ARGUMENT", "WEAK_PASSWORD")


async def test_login_answers_the_six_fields_with_json_numbers(api: Api) -> None:
    await api.register()
    pair = await api.login()
    assert set(pair) == TOKEN_PAIR_FIELDS
    assert pair["token_type"] == "Bearer"
    assert type(pair["expires_in"]) is int and pair["expires_in"] == 900
    assert type(pair["refresh_expires_in"]) is int and pair["refresh_expires_in"] == 2592000
    assert all(
        isinstance(pair[name], str) and pair[name] for name in ("access_token", "refresh_token", "session_id")
    )


async def test_unknown_email_and_wrong_password_get_the_same_401(api: Api) -> None:
    await api.register()
    unknown = await api.post("/login", {"email": "nobody@example.com", "password": PASSWORD})
    wrong = await api.post("/login", {"email": "ada@example.com", "password": "not the password"})
    for status, body, headers in (unknown, wrong):
        assert status == 401
        assert headers["WWW-Authenticate"] == "Bearer"
        assert (body["code"], body["reason"]) == ("UNAUTHENTICATED", "INVALID_CREDENTIALS")
    assert unknown[1] == wrong[1]


async def test_refresh_answers_a_new_pair_for_the_same_session(api: Api) -> None:
    await api.register()
    pair = await api.login()
    status, renewed, _ = await api.post("/refresh", {"refresh_token": pair["refresh_token"]})
    assert status == 200
    assert set(renewed) == TOKEN_PAIR_FIELDS
    assert renewed["session_id"] == pair["session_id"]
    assert renewed["refresh_token"] != pair["refresh_token"]


async def test_logout_answers_the_message_and_the_refresh_token_is_dead_afterwards(api: Api) -> None:
    await api.register()
    pair = await api.login()
    status, body, _ = await api.post("/logout", {"refresh_token": pair["refresh_token"]})
    assert (status, body) == (200, {"message": "Logged out successfully"})

    status, body, headers = await api.post("/refresh", {"refresh_token": pair["refresh_token"]})
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert body["code"] == "UNAUTHENTICATED"


async def test_logout_with_an_invalid_token_is_401_with_www_authenticate(api: Api) -> None:
    status, body, headers = await api.post("/logout", {"refresh_token": "not-a-token"})
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert (body["code"], body["reason"]) == ("UNAUTHENTICATED", "TOKEN_INVALID")


async def test_logout_all_revokes_every_device_and_counts_them(api: Api) -> None:
    await api.register()
    devices = [await api.login() for _ in range(3)]

    status, body, _ = await api.post("/logout-all", headers=_bearer(devices[0]))
    assert (status, body) == (
        200,
        {"message": "Logged out from all devices successfully", "revoked_sessions": 3},
    )
    for device in devices:
        status, body, _ = await api.post("/refresh", {"refresh_token": device["refresh_token"]})
        assert status == 401
        assert body["code"] == "UNAUTHENTICATED"


async def test_an_access_token_of_a_revoked_session_is_refused_at_once(api: Api) -> None:
    await api.register()
    pair = await api.login()
    await api.post("/logout-all", headers=_bearer(pair))
    status, body, _ = await api.post("/logout-all", headers=_bearer(pair))
    assert status == 401
    assert body["code"] == "UNAUTHENTICATED"


async def test_logout_all_without_an_authorization_header_is_403_not_authenticated(api: Api) -> None:
    status, body, headers = await api.post("/logout-all")
    assert status == 403
    assert body == {"detail": "Not authenticated", "code": "UNAUTHENTICATED", "reason": "NOT_AUTHENTICATED"}
    assert "WWW-Authenticate" not in headers


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", "Bearer ", "Basic YTpi", "garbage"])
async def test_logout_all_with_an_invalid_bearer_is_401(api: Api, authorization: str) -> None:
    status, body, headers = await api.post("/logout-all", headers={"Authorization": authorization})
    assert status == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert body["code"] == "UNAUTHENTICATED"


async def test_a_refresh_token_is_not_a_bearer_token(api: Api) -> None:
    await api.register()
    pair = await api.login()
    status, _, _ = await api.post("/logout-all", headers={"Authorization": f"Bearer {pair['refresh_token']}"})
    assert status == 401


@pytest.mark.parametrize(
    ("case", "data", "status", "reason"),
    [
        ("invalid JSON", b'{"email": "ada@example.com",', 400, "INVALID_JSON"),
        ("a wrong field type", b'{"email": ["ada@example.com"], "password": 12345678}', 400, "INVALID_FIELD"),
        ("a body of 65 KiB", b'{"email": "' + b"a" * (65 * 1024) + b'"}', 413, "BODY_TOO_LARGE"),
    ],
)
async def test_bad_requests_are_answered_in_the_error_shape(
    http: aiohttp.ClientSession, gateway: RunningGateway, case: str, data: bytes, status: int, reason: str
) -> None:
    async with http.post(
        gateway.url + "/api/v1/auth/login", data=data, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == status
        body = await response.json()
        assert set(body) == {"detail", "code", "reason"}
        assert body["reason"] == reason


async def test_unknown_paths_are_404_and_wrong_verbs_405(
    http: aiohttp.ClientSession, gateway: RunningGateway
) -> None:
    async with http.post(gateway.url + "/api/v1/auth/nothing") as response:
        assert response.status == 404
        assert (await response.json())["code"] == "NOT_FOUND"
    async with http.delete(gateway.url + "/api/v1/auth/register") as response:
        assert response.status == 405
        assert (await response.json())["code"] == "UNIMPLEMENTED"


async def test_every_answer_echoes_the_request_id(api: Api) -> None:
    _, _, headers = await api.post(
        "/login", {"email": "x@example.com", "password": PASSWORD}, {"X-Request-Id": "r-1"}
    )
    assert headers["X-Request-Id"] == "r-1"
