"""Introspect (RFC 7662): active only for a good access token of a live session; else just inactive."""

from __future__ import annotations

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from authsvc.settings import Settings
from authsvc.v1 import auth_pb2
from tests.status import expect_error

SECRET = "internal-introspection-secret"


def as_gateway_json(message) -> dict[str, object]:
    # The REST gateway's printing options: unset optional members are absent, plain ones always shown.
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


@pytest.fixture
def introspect(auth_server):
    async def _introspect(token: str, metadata=()) -> auth_pb2.IntrospectResponse:
        return await auth_server.stub.Introspect(auth_pb2.IntrospectRequest(token=token), metadata=metadata)

    return _introspect


async def test_a_live_access_token_is_active_with_its_claims(register, login, introspect):
    user = await register()
    pair = await login()
    answer = await introspect(pair.access_token)
    exp = jwt.decode(pair.access_token, options={"verify_signature": False})["exp"]
    assert as_gateway_json(answer) == {
        "active": True,
        "token_type": "Bearer",
        "sub": user.user_id,
        "sid": pair.session_id,
        "exp": exp,
        "email": "ada@example.com",
        "role": "user",
    }


async def _inactive(introspect, token: str) -> None:
    assert as_gateway_json(await introspect(token)) == {"active": False}


async def test_a_refresh_token_is_inactive(register, login, introspect):
    await register()
    await _inactive(introspect, (await login()).refresh_token)


@pytest.mark.parametrize(
    "token", ["", "not-a-jwt", "a.b.c", "x" * 10_000], ids=["empty", "junk", "dots", "huge"]
)
async def test_junk_is_inactive_not_an_error(introspect, token):
    await _inactive(introspect, token)


async def test_an_expired_access_token_is_inactive(auth_server, register, login, introspect):
    await register()
    pair = await login()
    auth_server.clock.advance(901)
    await _inactive(introspect, pair.access_token)


async def test_the_access_token_of_a_logged_out_session_is_inactive_at_once(
    auth_server, register, login, introspect
):
    await register()
    pair = await login()
    await auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=pair.refresh_token))
    await _inactive(introspect, pair.access_token)


async def test_a_token_signed_by_another_key_is_inactive(register, login, introspect):
    await register()
    pair = await login()
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(pair.access_token)
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]}
    )
    await _inactive(introspect, forged)


@pytest.mark.parametrize("server_settings", [{"introspection_secret": SECRET}], indirect=True)
@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong"),), (("authorization", f"Basic {SECRET}"),)],
    ids=["none", "wrong", "not-bearer"],
)
async def test_with_a_secret_configured_callers_without_it_are_unauthenticated(
    register, login, introspect, metadata
):
    await register()
    pair = await login()
    await expect_error(
        introspect(pair.access_token, metadata), grpc.StatusCode.UNAUTHENTICATED, "NOT_AUTHENTICATED"
    )


@pytest.mark.parametrize("server_settings", [{"introspection_secret": SECRET}], indirect=True)
async def test_with_a_secret_configured_callers_presenting_it_get_answers(register, login, introspect):
    await register()
    pair = await login()
    answer = await introspect(pair.access_token, (("authorization", f"Bearer {SECRET}"),))
    assert answer.active and answer.sid == pair.session_id
    await _inactive(lambda token: introspect(token, (("authorization", f"Bearer {SECRET}"),)), "junk")


def test_the_secret_is_read_from_the_environment_and_masked_in_the_startup_log():
    settings = Settings.from_env({"AUTHSVC_INTROSPECTION_SECRET": SECRET})
    assert settings.introspection_secret == SECRET
    assert settings.describe()["introspection_secret"] == "***"
    assert Settings().describe()["introspection_secret"] == ""


async def test_when_the_store_is_down_the_answer_is_unavailable_not_inactive(
    auth_server, register, login, introspect
):
    await register()
    pair = await login()
    await auth_server.running.store.close()
    await expect_error(introspect(pair.access_token), grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
