"""Introspect through the gateway: absent unless the sidecar is told to expose internal RPCs."""

from __future__ import annotations

import aiohttp
import jwt

from authsvc.gateway import GatewaySettings
from tests.gateway.conftest import running_gateway


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
