"""The data directory and the SQLite files hold password hashes and sessions: only the service may read them.

A fresh data directory is 0700, `authsvc.db` and its -wal and -shm 0600, both when `authsvc serve` runs as
a process (which sets umask 077) and when the server starts in-process under a permissive umask (the
migration creates the folder 0700 and the database 0600, and SQLite gives its side files the database's
bits). The signing keys stay as they were: a 0700 folder of 0600 files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.start import start_server
from authsvc.store.migrate import migrate
from tests.conftest import PASSWORD, make_settings
from tests.server_process import start_server_process

SIDE_FILES = ("authsvc.db", "authsvc.db-wal", "authsvc.db-shm")


@contextmanager
def permissive_umask() -> Iterator[None]:
    """Umask 022 (files 0644, folders 0755) for what starts inside: what a shell usually gives."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private(data_dir: Path) -> None:
    assert oct(mode(data_dir)) == oct(0o700)
    for name in SIDE_FILES:
        assert oct(mode(data_dir / name)) == oct(0o600), name
    keys = data_dir / "keys"
    assert oct(mode(keys)) == oct(0o700)
    secrets = [path for path in keys.iterdir() if path.suffix in (".pem", ".secret")]
    assert len(secrets) == 2  # the signing key and the refresh-token secret
    assert {oct(mode(path)) for path in secrets} == {oct(0o600)}


@pytest.mark.slow
def test_authsvc_serve_keeps_a_fresh_data_dir_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    with permissive_umask():
        server = start_server_process(data_dir, tmp_path / "serve.log")
    try:
        umask = next(
            line.split()[1]
            for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
            if line.startswith("Umask:")
        )
        assert umask == "0077"
        with grpc.insecure_channel(server.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD), timeout=30)
            stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD), timeout=30)
        assert_private(data_dir)  # while serving: the -wal and -shm exist
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert oct(mode(data_dir / "authsvc.db")) == oct(0o600)


async def test_an_in_process_start_keeps_a_fresh_data_dir_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    with permissive_umask():
        running = await start_server(make_settings(data_dir))
        try:
            async with grpc.aio.insecure_channel(running.target) as channel:
                stub = auth_pb2_grpc.AuthServiceStub(channel)
                await stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
                await stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
            assert_private(data_dir)
        finally:
            await running.stop(1)
    # The parent the migration had to create too follows the umask; only the data dir itself is the
    # service's.
    assert oct(mode(tmp_path / "fresh")) == oct(0o755)


async def test_an_existing_data_dir_and_database_are_left_as_they_are(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o750)
    data_dir.chmod(0o750)  # an operator's choice (a backup group, say) is not overridden
    with permissive_umask():
        running = await start_server(make_settings(data_dir))
        await running.stop(1)
    assert oct(mode(data_dir)) == oct(0o750)
    assert oct(mode(data_dir / "authsvc.db")) == oct(0o600)  # created here, so private


async def test_a_database_left_readable_by_an_earlier_version_is_made_private(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    url = f"sqlite+aiosqlite:///{data / 'authsvc.db'}"
    with permissive_umask():
        await migrate(url)
        for name in ("authsvc.db", "authsvc.db-wal"):
            (data / name).touch()
            (data / name).chmod(0o644)
        await migrate(url)
    assert [mode(data / name) for name in ("authsvc.db", "authsvc.db-wal")] == [0o600, 0o600]
