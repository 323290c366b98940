"""Introspect (RFC 7662): active only for a good access token of a live session; else just inactive.

Who may call it (loopback only without a secret, the secret's length, throttled guesses) is here end to
end; the decision's unit tests and the throttling are in tests/security/test_introspect_guard.py.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from dataclasses import replace

import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from authsvc.app.start import start_server
from authsvc.settings import Settings, SettingsError
from tests.ports import free_port
from tests.status import expect_error

SECRET = "internal-introspection-secret-0123456789"  # 40 bytes: at least 32 are required


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
        "email_verified": False,
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


SHORT_SECRET = "s3cret-of-31-bytes-0123456789ab"


def test_the_throttling_of_wrong_secrets_is_configured_from_the_environment():
    defaults = Settings()
    assert (defaults.introspection_window_seconds, defaults.introspection_max_failures_per_address) == (
        300,
        10,
    )
    settings = Settings.from_env(
        {"AUTHSVC_INTROSPECTION_WINDOW_SECONDS": "60", "AUTHSVC_INTROSPECTION_MAX_FAILURES_PER_ADDRESS": "3"}
    )
    assert (settings.introspection_window_seconds, settings.introspection_max_failures_per_address) == (60, 3)
    for variable in (
        "AUTHSVC_INTROSPECTION_WINDOW_SECONDS",
        "AUTHSVC_INTROSPECTION_MAX_FAILURES_PER_ADDRESS",
    ):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env({variable: "0"})


@pytest.mark.parametrize(
    ("secret", "accepted"),
    [(SHORT_SECRET, False), ("x" * 32, True), ("é" * 16, True), ("é" * 15 + "x", False)],
    ids=["31-bytes", "32-bytes", "32-bytes-in-16-characters", "31-bytes-in-16-characters"],
)
def test_a_secret_under_32_bytes_is_a_settings_error(secret, accepted):
    environ = {"AUTHSVC_INTROSPECTION_SECRET": secret}
    if accepted:
        assert Settings.from_env(environ).introspection_secret == secret
        return
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ)
    message = str(refused.value)
    assert "AUTHSVC_INTROSPECTION_SECRET" in message and "32 bytes" in message
    assert secret not in message and len(message.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "check"])
def test_serve_and_check_refuse_a_short_secret_with_one_line_and_exit_2(tmp_path, command):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATA_DIR": str(tmp_path / "data"),
        "AUTHSVC_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
        "AUTHSVC_INTROSPECTION_SECRET": SHORT_SECRET,
    }
    done = subprocess.run(
        [sys.executable, "-m", "authsvc.cli", command],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("authsvc: AUTHSVC_INTROSPECTION_SECRET must be at least 32 bytes")
    assert SHORT_SECRET not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything


def non_loopback_address() -> str | None:
    """An address of this host that is not loopback (the one its default route leaves from), if any."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing; it only picks the route
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_without_a_secret_a_caller_off_loopback_is_permission_denied(server_settings, clock, caplog):
    """A real peer that is not loopback: the server listens on every interface and the test calls it at
    this host's own non-loopback address. A loopback caller of the same server is answered."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    settings = replace(server_settings, grpc_listen="0.0.0.0:0", allow_insecure=True)
    with caplog.at_level(logging.WARNING, logger="authsvc.app.services"):
        running = await start_server(settings, clock=clock)
    assert any("Introspect answers loopback callers only" in r.getMessage() for r in caplog.records)
    try:
        request = auth_pb2.IntrospectRequest(token="junk")
        async with grpc.aio.insecure_channel(f"{address}:{running.port}") as outside:
            call = auth_pb2_grpc.AuthServiceStub(outside).Introspect(request)
            error = await expect_error(call, grpc.StatusCode.PERMISSION_DENIED, "INTROSPECTION_LOOPBACK_ONLY")
            assert "loopback" in (error.details() or "")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as local:
            assert not (await auth_pb2_grpc.AuthServiceStub(local).Introspect(request)).active
    finally:
        await running.stop(1)


@pytest.mark.parametrize("server_settings", [{"introspection_secret": SECRET}], indirect=True)
async def test_with_a_secret_a_caller_off_loopback_presenting_it_is_answered(server_settings, clock):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    settings = replace(server_settings, grpc_listen="0.0.0.0:0", allow_insecure=True)
    running = await start_server(settings, clock=clock)
    try:
        async with grpc.aio.insecure_channel(f"{address}:{running.port}") as outside:
            answer = await auth_pb2_grpc.AuthServiceStub(outside).Introspect(
                auth_pb2.IntrospectRequest(token="junk"), metadata=(("authorization", f"Bearer {SECRET}"),)
            )
        assert not answer.active
    finally:
        await running.stop(1)


async def test_when_the_store_is_down_the_answer_is_unavailable_not_inactive(
    auth_server, register, login, introspect
):
    await register()
    pair = await login()
    await auth_server.running.store.close()
    await expect_error(introspect(pair.access_token), grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
