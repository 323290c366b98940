"""Introspect through the gateway: absent unless the sidecar is told to expose internal RPCs; when
exposed, the server still judges each HTTP client: the secret and its throttling, or loopback only."""

from __future__ import annotations

import aiohttp
import jwt
import pytest

from authsvc.gateway import GatewaySettings, start_gateway
from tests.addresses import GATEWAY_SECRET_FILE
from tests.gateway.conftest import running_gateway
from tests.transport.test_introspect import non_loopback_address

SECRET = "internal-introspection-secret-0123456789"  # at least 32 bytes


async def test_introspect_is_not_routed_by_default(auth_server, http: aiohttp.ClientSession):
    async with (
        running_gateway(auth_server.target) as gateway,
        http.post(gateway.url + "/api/v1/auth/introspect", json={"token": "x"}) as response,
    ):
        assert response.status == 404
        assert (await response.json())["code"] == "NOT_FOUND"


async def test_an_exposing_sidecar_answers_rfc_7662_shapes(
    auth_server, register, login, http: aiohttp.ClientSession
):
    await register()
    pair = await login()
    async with running_gateway(auth_server.target, expose_internal=True) as gateway:
        url = gateway.url + "/api/v1/auth/introspect"
        async with http.post(url, json={"token": pair.access_token}) as response:
            active = await response.json()
        async with http.post(url, json={"token": "not a token"}) as response:
            inactive = (response.status, await response.json())
    assert active["active"] is True
    assert (active["sub"], active["sid"], active["email"]) == (
        pair_claims_sub(pair.access_token),
        pair.session_id,
        "ada@example.com",
    )
    assert isinstance(active["exp"], int)
    assert inactive == (200, {"active": False})


def pair_claims_sub(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def test_the_switch_is_read_from_the_environment():
    assert GatewaySettings.from_env({}).expose_internal is False
    assert GatewaySettings.from_env({"AUTHSVC_GATEWAY_EXPOSE_INTERNAL": "true"}).expose_internal is True


@pytest.mark.parametrize(
    "server_settings",
    [{"introspection_secret": SECRET, "introspection_max_failures_per_address": 2}],
    indirect=True,
)
async def test_an_exposing_sidecar_passes_the_secret_and_its_throttling_on(
    auth_server, http: aiohttp.ClientSession
):
    async with running_gateway(auth_server.target, expose_internal=True) as gateway:
        url = gateway.url + "/api/v1/auth/introspect"

        async def post(secret: str | None) -> tuple[int, object, str | None]:
            headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
            async with http.post(url, json={"token": "junk"}, headers=headers) as response:
                body = await response.json()
                return (
                    response.status,
                    body.get("reason", body.get("active")),
                    response.headers.get("Retry-After"),
                )

        assert await post(SECRET) == (200, False, None)
        assert await post(None) == (401, "NOT_AUTHENTICATED", None)
        assert await post("guessed-secret-guessed-secret-guessed") == (401, "NOT_AUTHENTICATED", None)
        assert await post(SECRET) == (429, "THROTTLED", "300")


async def test_without_a_secret_an_exposing_sidecar_answers_loopback_clients_only(
    auth_server, http: aiohttp.ClientSession
):
    """The sidecar listens on every interface; an HTTP client reaching it at this host's non-loopback
    address is refused (the sidecar forwards its address), one on loopback is answered."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    settings = GatewaySettings(
        http_host="0.0.0.0",
        http_port=0,
        grpc_target=auth_server.target,
        expose_internal=True,
        gateway_secret_file=GATEWAY_SECRET_FILE,  # the server's: it believes the address forwarded
    )
    gateway = await start_gateway(settings)
    try:
        outside = f"http://{address}:{gateway.port}/api/v1/auth/introspect"
        async with http.post(outside, json={"token": "junk"}) as response:
            refused = (response.status, (await response.json())["reason"])
        local = f"http://127.0.0.1:{gateway.port}/api/v1/auth/introspect"
        async with http.post(local, json={"token": "junk"}) as response:
            answered = (response.status, await response.json())
    finally:
        await gateway.stop()
    assert refused == (403, "INTROSPECTION_LOOPBACK_ONLY")
    assert answered == (200, {"active": False})
