"""The limits the OpenAPI document states are the server's, over real HTTP through the real gateway.

For every length limit of a request schema in the document (FIELD_SCHEMAS, and "not empty" for REQUIRED
strings): a value at the limit is not refused as invalid, and one past it is refused with a status and a
reason word that the route's operation documents. Routes that need a bearer get a signed-in user's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from authsvc.gateway import RunningGateway, build_document, service_routes
from authsvc.gateway.routes import Route
from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway

# A sweep of every documented limit through a live server and gateway; the table itself is checked fast.
pytestmark = pytest.mark.slow

ROUTES = {route.request_descriptor.full_name: route for route in service_routes()}
DOCUMENT = build_document(service_routes())

NEW_PASSWORD = "a brand new passphrase"
# A request the server would take but for the field under test, per request message.
VALID_REQUESTS: dict[str, Callable[[], dict[str, str]]] = {
    "authsvc.v1.RegisterRequest": lambda: {"email": "ada@example.com", "password": PASSWORD},
    "authsvc.v1.LoginRequest": lambda: {"email": "ada@example.com", "password": PASSWORD},
    "authsvc.v1.RefreshRequest": lambda: {"refresh_token": "rt1_x"},
    "authsvc.v1.LogoutRequest": lambda: {"refresh_token": "rt1_x"},
    "authsvc.v1.UpdateProfileRequest": lambda: {"display_name": "Ada"},
    "authsvc.v1.ChangePasswordRequest": lambda: {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    "authsvc.v1.ForgotPasswordRequest": lambda: {"email": "ada@example.com"},
    "authsvc.v1.ResetPasswordRequest": lambda: {"token": "x", "new_password": NEW_PASSWORD},
    "authsvc.v1.VerifyEmailRequest": lambda: {"token": "x"},
    "authsvc.v1.DeleteAccountRequest": lambda: {"password": PASSWORD},
}
# A made-up mailed token of an allowed length is refused as wrong (400 too), not as malformed.
WRONG_NOT_MALFORMED = {"RESET_TOKEN_INVALID", "VERIFICATION_TOKEN_INVALID"}


def email_of_length(length: int) -> str:
    """A syntactically valid address of exactly `length` characters (labels of at most 63)."""
    local, top = "a", ".com"
    middle = length - len(local) - 1 - len(top)
    labels, remaining = [], middle
    while remaining > 0:
        size = min(63, remaining)
        if remaining - size == 1:  # the dot before a label of one character would not fit: shorten
            size -= 1
        labels.append("x" * size)
        remaining -= size + (1 if remaining - size > 0 else 0)
    address = f"{local}@{'.'.join(labels)}{top}"
    assert len(address) == length
    return address


def value_of_length(schema: dict[str, Any], length: int) -> str:
    return email_of_length(length) if "format" in schema and length else "a" * length


def limit_cases() -> list[tuple[str, int, bool]]:
    """(message.field, length, refused) for each length limit a request schema of the document states:
    at the limit, and one past it."""
    cases = []
    schemas = DOCUMENT["components"]["schemas"]
    for message in VALID_REQUESTS:
        for name, schema in schemas[message]["properties"].items():
            field = f"{message}.{name}"
            if "maxLength" in schema:
                cases += [(field, schema["maxLength"], False), (field, schema["maxLength"] + 1, True)]
            if "minLength" in schema:
                # An address at the minimum length is no address: only the empty one is tried.
                cases += [] if "format" in schema else [(field, schema["minLength"], False)]
                cases += [(field, schema["minLength"] - 1, True)]
    return cases


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # Limits are checked before the store is: SQLite alone.
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'authsvc.db'}"


@pytest.fixture
async def gateway(auth_server: ServerHandle) -> AsyncIterator[RunningGateway]:
    async with running_gateway(auth_server.target) as running:
        yield running


async def post(http: aiohttp.ClientSession, gateway: RunningGateway, path: str, body: Any) -> tuple[int, Any]:
    async with http.post(gateway.url + path, json=body) as response:
        return response.status, await response.json()


async def send(
    http: aiohttp.ClientSession, gateway: RunningGateway, route: Route, body: Any
) -> tuple[int, Any]:
    """`body` to `route`, with a fresh user's access token when the route needs a bearer."""
    headers = {}
    if route.requires_bearer:
        credentials = {"email": "ada@example.com", "password": PASSWORD}
        assert (await post(http, gateway, "/api/v1/auth/register", credentials))[0] == 201
        status, pair = await post(http, gateway, "/api/v1/auth/login", credentials)
        assert status == 200, pair
        headers["Authorization"] = f"Bearer {pair['access_token']}"
    async with http.request(
        route.http_method, gateway.url + route.template, json=body, headers=headers
    ) as answer:
        return answer.status, await answer.json()


def documented_reasons(route: Route, status: int) -> set[str]:
    responses = DOCUMENT["paths"][route.template][route.http_method.lower()]["responses"]
    assert str(status) in responses, f"{route.template} does not document {status}: {sorted(responses)}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return set(schema["properties"]["reason"]["enum"])


@pytest.mark.parametrize(
    ("field", "length", "refused"), limit_cases(), ids=lambda value: str(value).removeprefix("authsvc.v1.")
)
async def test_a_value_at_a_documented_limit_is_taken_and_one_past_it_refused_as_documented(
    http: aiohttp.ClientSession, gateway: RunningGateway, field: str, length: int, refused: bool
) -> None:
    message, _, name = field.rpartition(".")
    route = ROUTES[message]
    body = VALID_REQUESTS[message]()
    schema = DOCUMENT["components"]["schemas"][message]["properties"][name]
    body[name] = value_of_length(schema, length)

    status, answer = await send(http, gateway, route, body)

    if refused:
        assert 400 <= status < 500, answer
        assert answer["reason"] in route.error_reasons, answer  # the server's refusal, not the gateway's
        assert answer["reason"] in documented_reasons(route, status)
    else:
        # Other refusals (a made-up token, no such account, a wrong password) may follow.
        assert status < 500, answer
        assert status != 400 or answer["reason"] in WRONG_NOT_MALFORMED, answer


async def test_the_password_limit_is_in_bytes_so_fewer_non_ascii_characters_reach_it(
    http: aiohttp.ClientSession, gateway: RunningGateway
) -> None:
    # "é" is two bytes in UTF-8: 36 of them are 72 bytes, 37 are 74 bytes in 37 characters.
    status, _ = await post(
        http, gateway, "/api/v1/auth/register", {"email": "ada@example.com", "password": "é" * 36}
    )
    assert status == 201
    status, answer = await post(
        http, gateway, "/api/v1/auth/register", {"email": "bob@example.com", "password": "é" * 37}
    )
    assert (status, answer["reason"]) == (400, "PASSWORD_TOO_LONG")
