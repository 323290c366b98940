"""Key rotation: `authsvc keys rotate` adds a key that signs after a restart while older tokens stay good;
`authsvc keys prune` drops a key only once no live token can carry it."""

from __future__ import annotations

import grpc
import jwt
import pytest

from authsvc.v1 import auth_pb2
from tests.cli import run_cli
from tests.status import expect_error

# Short lifetimes so that "no live token can use it" is minutes, not a month, away.
SHORT = {"access_ttl_seconds": 60, "refresh_ttl_seconds": 600}


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def published_kids(auth_server) -> list[str]:
    answer = await auth_server.stub.GetJwks(auth_pb2.GetJwksRequest())
    return [key.kid for key in answer.keys]


async def test_after_rotate_and_restart_old_tokens_still_work_and_new_ones_carry_the_new_kid(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    before = await login()
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "rotate")
    assert code == 0 and "added signing key" in out
    new_kid = out.split()[3].rstrip(";")
    await auth_server.restart()

    # The access token signed by the old key is still accepted by authenticated RPCs...
    await auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(before.access_token))
    # ...and its refresh token still refreshes, into tokens signed by the new key.
    renewed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=before.refresh_token))
    after = await login()
    assert kid(renewed.access_token) == kid(renewed.refresh_token) == kid(after.access_token) == new_kid
    assert kid(before.access_token) != new_kid
    assert await published_kids(auth_server) == [new_kid, kid(before.access_token)]


async def test_a_rotation_is_not_used_before_the_restart(auth_server, register, login, monkeypatch, capsys):
    await register()
    first = await login()
    await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "rotate")
    assert kid((await login()).access_token) == kid(first.access_token)


@pytest.mark.parametrize("server_settings", [SHORT], indirect=True)
async def test_prune_keeps_a_replaced_key_while_its_tokens_may_live(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    await login()
    await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "rotate")
    auth_server.clock.advance(600)  # exactly the refresh lifetime: a token may still be valid
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "prune")
    assert code == 0 and out.startswith("no signing key to remove")
    assert len(list(auth_server.settings.signing_keys_dir.glob("*.pem"))) == 2


@pytest.mark.parametrize("server_settings", [SHORT], indirect=True)
async def test_prune_removes_a_key_no_token_can_use_and_its_tokens_are_then_rejected(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    old = await login()
    await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "rotate")
    await auth_server.restart()
    auth_server.clock.advance(601)
    code, out = await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, "keys", "prune")
    assert code == 0
    assert len(out.splitlines()) == 1 and out.startswith(f"removed signing key {kid(old.access_token)} ")
    await auth_server.restart()

    # Unknown kid: TOKEN_INVALID, before any expiry check, for both kinds of token.
    await expect_error(
        auth_server.stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(old.access_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=old.refresh_token)),
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
