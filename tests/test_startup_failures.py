"""Every way `authsvc serve` can fail to start is one line on stderr and a non-zero exit, never a
traceback: the real command, in its own process, as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from authsvc.store.migrate import migrate

pytestmark = pytest.mark.slow

AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def _serve(data_dir: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {"AUTHSVC_DATA_DIR": str(data_dir), "AUTHSVC_GRPC_LISTEN": "127.0.0.1:0", **variables}
    return subprocess.run(
        [AUTHSVC, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _bad_key(data_dir: Path) -> dict[str, str]:
    asyncio.run(migrate(f"sqlite+aiosqlite:///{data_dir / 'authsvc.db'}"))
    (data_dir / "keys").mkdir()
    (data_dir / "keys" / "20260101T000000000000Z-bad.pem").write_text("not a key")
    return {}


def _missing_database(data_dir: Path, admin_url: str) -> dict[str, str]:
    name = f"authsvc_missing_{secrets.token_hex(4)}"
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return {
        "AUTHSVC_DATABASE_URL": url.render_as_string(hide_password=False),
        "AUTHSVC_DB_TIMEOUT_SECONDS": "5",
    }


def _unmigrated(data_dir: Path) -> dict[str, str]:
    return {"AUTHSVC_MIGRATE_ON_START": "false"}


CASES: dict[str, tuple[Callable[..., dict[str, str]] | dict[str, str], str]] = {
    "bad setting": ({"AUTHSVC_ACCESS_TTL_SECONDS": "soon"}, "AUTHSVC_ACCESS_TTL_SECONDS"),
    "bad log level": ({"AUTHSVC_LOG_LEVEL": "loud"}, "AUTHSVC_LOG_LEVEL"),
    "plain text off loopback": ({"AUTHSVC_GRPC_LISTEN": "0.0.0.0:0"}, "AUTHSVC_ALLOW_INSECURE"),
    "missing certificate": (
        {"AUTHSVC_TLS_CERT_FILE": "/nonexistent.crt", "AUTHSVC_TLS_KEY_FILE": "/nonexistent.key"},
        "certificate",
    ),
    "unreadable signing key": (_bad_key, "cannot read signing key"),
    "unmigrated store with migration off": (_unmigrated, "authsvc migrate"),
    "missing database": (_missing_database, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_start_up_failure_is_one_line_on_stderr_and_a_non_zero_exit(case, tmp_path, postgres_admin_url):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    setup, expected = CASES[case]
    if callable(setup):
        arguments = (data_dir, postgres_admin_url) if setup is _missing_database else (data_dir,)
        variables = setup(*arguments)
    else:
        variables = setup
    done = _serve(data_dir, **variables)
    assert done.returncode in (2, 3), (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("authsvc: ") and expected in line, line
    for logged in done.stdout.splitlines():  # `serve` logs JSON on stdout: nothing else there
        json.loads(logged)


def test_a_busy_port_is_one_line_on_stderr_and_a_non_zero_exit(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(tmp_path / "data", AUTHSVC_GRPC_LISTEN=f"127.0.0.1:{port}")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("authsvc: ") and f"127.0.0.1:{port}" in line, line
