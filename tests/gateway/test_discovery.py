"""What a verifier's library reads to configure itself: the discovery document and a cacheable JWKS."""

from __future__ import annotations

import jwt

from tests.gateway.conftest import running_gateway


async def test_the_jwks_is_cacheable_for_less_than_the_activation_delay(auth_server, http):
    async with running_gateway(auth_server.target) as gateway:
        async with http.get(gateway.url + "/.well-known/jwks.json") as answer:
            assert answer.status == 200
            assert answer.headers["Cache-Control"] == "public, max-age=300"
            document = await answer.json()
        # Token answers stay out of every cache.
        async with http.get(gateway.url + "/api/v1/auth/sessions") as answer:
            assert answer.headers["Cache-Control"] == "no-store"
    assert [key["kid"] for key in document["keys"]]


async def test_a_short_activation_delay_shortens_the_cache_lifetime(auth_server, http):
    await auth_server.restart(key_activation_delay_seconds=40, keys_reload_seconds=30)
    async with (
        running_gateway(auth_server.target) as gateway,
        http.get(gateway.url + "/.well-known/jwks.json") as answer,
    ):
        assert answer.headers["Cache-Control"] == "public, max-age=10"


async def test_discovery_names_the_issuer_and_absolute_urls_from_the_request(auth_server, http):
    async with (
        running_gateway(auth_server.target) as gateway,
        http.get(gateway.url + "/.well-known/openid-configuration") as answer,
    ):
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("application/json")
        document = await answer.json()
    assert document["issuer"] == "authsvc"
    assert document["jwks_uri"] == gateway.url + "/.well-known/jwks.json"
    assert document["token_endpoint"] == gateway.url + "/api/v1/auth/login"
    assert document["revocation_endpoint"] == gateway.url + "/api/v1/auth/logout"
    assert "introspection_endpoint" not in document  # Introspect is not routed by default
    assert document["id_token_signing_alg_values_supported"] == ["EdDSA"]


async def test_discovery_uses_the_public_url_and_lists_introspection_where_routed(auth_server, http):
    async with (
        running_gateway(
            auth_server.target,
            expose_internal=True,
            public_url="https://auth.example.com/",
            issuer="https://auth.example.com",
        ) as gateway,
        http.get(gateway.url + "/.well-known/openid-configuration") as answer,
    ):
        document = await answer.json()
    assert document["issuer"] == "https://auth.example.com"
    assert document["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
    assert document["introspection_endpoint"] == "https://auth.example.com/api/v1/auth/introspect"


async def test_a_library_configured_from_discovery_verifies_an_access_token(
    auth_server, register, login, http
):
    await register()
    pair = await login()
    async with running_gateway(auth_server.target) as gateway:
        async with http.get(gateway.url + "/.well-known/openid-configuration") as answer:
            document = await answer.json()
        async with http.get(document["jwks_uri"]) as answer:
            keys = jwt.PyJWKSet.from_dict(await answer.json())
    header = jwt.get_unverified_header(pair.access_token)
    assert header["typ"] == "at+jwt"
    claims = jwt.decode(
        pair.access_token,
        keys[header["kid"]].key,
        algorithms=document["id_token_signing_alg_values_supported"],
        issuer=document["issuer"],
        audience="authsvc",
    )
    assert claims["sid"] == pair.session_id and claims["client_id"] == "authsvc"
