"""Running the `authsvc` command in-process against a test server's data, on the test's clock."""

from __future__ import annotations

import asyncio

import pytest

from authsvc import cli
from authsvc.settings import Settings
from tests.conftest import ManualClock


async def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    clock: ManualClock,
    *argv: str,
) -> tuple[int, str]:
    """Run `authsvc ARGV` with the environment that names `settings`; return its exit code and output.

    It runs in a thread because the command starts its own event loop.
    """
    code, out, _err = await run_cli_capturing_errors(monkeypatch, capsys, settings, clock, *argv)
    return code, out


async def run_cli_capturing_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    clock: ManualClock,
    *argv: str,
) -> tuple[int, str, str]:
    """`run_cli`, returning what the command wrote on stderr too."""
    monkeypatch.setattr(cli, "configure_logging", lambda *_args: None)  # keep pytest's handlers
    environment = {
        "AUTHSVC_DATA_DIR": str(settings.data_dir),
        "AUTHSVC_DATABASE_URL": settings.database_url,
        "AUTHSVC_KEYS_DIR": str(settings.signing_keys_dir),
        "AUTHSVC_ACCESS_TTL_SECONDS": str(settings.access_ttl_seconds),
        "AUTHSVC_REFRESH_TTL_SECONDS": str(settings.refresh_ttl_seconds),
        "AUTHSVC_KEYS_RELOAD_SECONDS": str(settings.keys_reload_seconds),
        "AUTHSVC_KEY_ACTIVATION_DELAY_SECONDS": str(settings.key_activation_delay_seconds),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(argv), clock=clock)
    written = capsys.readouterr()
    return code, written.out, written.err
