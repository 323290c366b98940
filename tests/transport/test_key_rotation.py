"""Keys that running servers follow: `authsvc keys rotate` adds a key that is published at the next reload
and signs after the activation delay, with no restart; `keys prune` drops a key only once no live token can
carry it; `keys revoke` pulls a key out of a running server at its next reload."""

from __future__ import annotations

import logging

import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2

from tests.cli import run_cli
from tests.status import expect_error

DELAY = 600  # the default activation delay
# Short lifetimes so that "no live token can use it" is minutes, not a month, away.
SHORT = {"access_ttl_seconds": 60, "refresh_ttl_seconds": 600}


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def published_kids(auth_server) -> list[str]:
    answer = await auth_server.stub.GetJwks(auth_pb2.GetJwksRequest())
    return [key.kid for key in answer.keys]


async def rotate(auth_server, monkeypatch, capsys) -> str:
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "rotate")
    assert code == 0 and out.startswith("added signing key ")
    return out.split()[3].rstrip(";")


async def test_a_rotated_key_is_published_at_the_next_reload_and_signs_after_the_delay(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    before = await login()
    new_kid = await rotate(auth_server, monkeypatch, capsys)
    assert await published_kids(auth_server) == [kid(before.access_token)]  # not reloaded yet
    await auth_server.running.reload_keys()

    # Published at once, newest first, while the old key still signs: verifiers learn it first.
    assert await published_kids(auth_server) == [new_kid, kid(before.access_token)]
    auth_server.clock.advance(DELAY - 1)
    assert kid((await login()).access_token) == kid(before.access_token)

    auth_server.clock.advance(2)
    renewed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=before.refresh_token))
    after = await login()
    assert kid(renewed.access_token) == kid(after.access_token) == new_kid
    # The access token signed by the old key is still accepted by authenticated RPCs.
    await auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(before.access_token))


@pytest.mark.parametrize("server_settings", [SHORT], indirect=True)
async def test_prune_keeps_a_replaced_key_while_its_tokens_may_live(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    await login()
    await rotate(auth_server, monkeypatch, capsys)
    # The old key signed until the new one activated; then tokens live up to the refresh lifetime.
    auth_server.clock.advance(DELAY + 600)
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "prune")
    assert code == 0 and out.startswith("no signing key to remove")
    assert len(list(auth_server.settings.signing_keys_dir.glob("*.pem"))) == 2


@pytest.mark.parametrize("server_settings", [SHORT], indirect=True)
async def test_prune_removes_a_key_no_token_can_use_and_running_servers_then_refuse_it(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    old = await login()
    await rotate(auth_server, monkeypatch, capsys)
    auth_server.clock.advance(DELAY + 601)
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "prune")
    assert code == 0
    assert len(out.splitlines()) == 1 and out.startswith(f"removed signing key {kid(old.access_token)} ")
    await auth_server.running.reload_keys()  # what the running server does every reload interval

    # Unknown kid: TOKEN_INVALID, before any expiry check.
    await expect_error(
        auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(old.access_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )
    assert kid(old.access_token) not in await published_kids(auth_server)
    fresh = await login()
    await auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(fresh.access_token))


async def test_prune_never_removes_the_only_key(auth_server, monkeypatch, capsys):
    auth_server.clock.advance(10 * 365 * 86400)
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "prune")
    assert code == 0 and out.startswith("no signing key to remove")
    assert len(list(auth_server.settings.signing_keys_dir.glob("*.pem"))) == 1


async def test_a_revoked_key_is_refused_at_the_next_reload_with_a_log_line_naming_it(
    auth_server, register, login, monkeypatch, capsys, caplog
):
    await register()
    pair = await login()
    revoked = kid(pair.access_token)
    code, out = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "revoke", revoked
    )
    assert code == 0 and out.startswith(f"revoked signing key {revoked};")
    replacement = out.splitlines()[1].split()[3]  # the only key was revoked: one is added in its place
    await auth_server.running.reload_keys()

    assert await published_kids(auth_server) == [replacement]
    with caplog.at_level(logging.WARNING, logger="authsvc.tokens"):
        await expect_error(
            auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(pair.access_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
    assert [record.__dict__.get("kid") for record in caplog.records] == [revoked]
    # Refresh tokens are not signed: the session goes on, now under the replacement key.
    renewed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    assert kid(renewed.access_token) == replacement
    await auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(renewed.access_token))


async def test_revoking_the_signing_key_falls_back_to_the_previous_one_and_adds_a_replacement(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    first = kid((await login()).access_token)
    second = await rotate(auth_server, monkeypatch, capsys)
    auth_server.clock.advance(DELAY + 1)
    await auth_server.running.reload_keys()
    assert kid((await login()).access_token) == second

    code, out = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "revoke", second
    )
    assert code == 0
    third = out.splitlines()[1].split()[3]
    await auth_server.running.reload_keys()
    assert await published_kids(auth_server) == [third, first]
    assert kid((await login()).access_token) == first  # the replacement waits out the activation delay
    auth_server.clock.advance(DELAY + 1)
    assert kid((await login()).access_token) == third


async def test_revoking_an_unknown_kid_is_one_line_and_exit_2(auth_server, monkeypatch, capsys):
    code, out = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "revoke", "no-such-kid"
    )
    assert code == 2 and out == ""  # the one line goes to stderr
