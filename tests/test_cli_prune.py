"""`authsvc prune --older-than AGE`: sessions that ended before the cut-off go, in batches; the rest stay."""

from __future__ import annotations

import argparse
from datetime import timedelta

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.cli import parse_duration
from authsvc.store import NotFound
from tests.cli import run_cli

HOUR = 3600


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("15m", timedelta(minutes=15)),
        ("90s", timedelta(seconds=90)),
        ("0s", timedelta(0)),
    ],
)
def test_ages_take_a_seconds_minutes_hours_or_days_suffix(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1.5h", "30w", "30 d", "30D"])
def test_other_ages_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


async def _logout(auth_server, pair) -> None:
    await auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=pair.refresh_token))


@pytest.mark.parametrize("server_settings", [{"refresh_ttl_seconds": HOUR}], indirect=True)
@pytest.mark.parametrize("batch_size", ["500", "2", "1"])
async def test_prune_deletes_sessions_that_ended_before_the_cutoff_and_keeps_the_rest(
    auth_server, register, login, monkeypatch, capsys, batch_size
):
    await register()
    revoked_long_ago, expired_a, expired_b = await login(), await login(), await login()
    await _logout(auth_server, revoked_long_ago)
    auth_server.clock.advance(2 * HOUR)  # the two others expired an hour ago
    live = await login()
    revoked_just_now = await login()
    await _logout(auth_server, revoked_just_now)

    code, out = await run_cli(
        monkeypatch,
        capsys,
        auth_server.settings,
        auth_server.clock,
        "prune",
        "--older-than",
        "30m",
        "--batch-size",
        batch_size,
    )
    assert code == 0
    cutoff = auth_server.clock.now - timedelta(minutes=30)
    sessions_line = out.splitlines()[0]
    assert sessions_line == f"deleted 3 sessions that expired or were revoked before {cutoff.isoformat()}"

    store = auth_server.running.store
    for gone in (revoked_long_ago, expired_a, expired_b):
        with pytest.raises(NotFound):
            await store.get_session(gone.session_id)
    kept = await store.get_session(revoked_just_now.session_id)
    assert kept.revoked_reason == "logout"  # recent revocations stay as the audit trail
    # The live session is untouched.
    await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=live.refresh_token))


async def test_a_second_prune_finds_nothing(auth_server, register, login, monkeypatch, capsys):
    await register()
    await _logout(auth_server, await login())
    auth_server.clock.advance(31 * 86400)
    _, first = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "prune", "--older-than", "30d"
    )
    _, second = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "prune", "--older-than", "30d"
    )
    assert (first.split()[1], second.split()[1]) == ("1", "0")


async def test_prune_refuses_a_malformed_age(auth_server, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exited:
        await run_cli(
            monkeypatch, capsys, auth_server.settings, auth_server.clock, "prune", "--older-than", "soon"
        )
    assert exited.value.code == 2
    assert "is not a duration" in capsys.readouterr().err


@pytest.mark.parametrize("server_settings", [{"login_window_seconds": 300}], indirect=True)
async def test_prune_deletes_login_throttling_counters_whose_window_ended(
    auth_server, register, login, monkeypatch, capsys
):
    await register()
    with pytest.raises(grpc.aio.AioRpcError):
        # Leaves counters for the account at this address and for the address (300 s windows), and one for
        # the account across addresses (an hour): only the first two have ended by 301 s.
        await login(password="wrong password")
    _, early = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "prune", "--older-than", "30d"
    )
    auth_server.clock.advance(301)
    _, late = await run_cli(
        monkeypatch, capsys, auth_server.settings, auth_server.clock, "prune", "--older-than", "30d"
    )
    assert early.splitlines()[1] == "deleted 0 login throttling counters whose window had ended"
    assert late.splitlines()[1] == "deleted 2 login throttling counters whose window had ended"
