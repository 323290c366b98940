"""Nothing secret leaks: after a full run, the server's log and its database files (the -wal and -shm
included) hold no issued access or refresh token, no part of one's signature, no password, and not the
gateway secret (which a call shows, and a wrong one gets logged about)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc import gateway_secret
from tests.addresses import as_gateway
from tests.server_process import start_server_process

pytestmark = pytest.mark.slow

PASSWORDS = ["first secret passphrase", "second secret passphrase"]
WRONG_PASSWORD = "a wrong guess of a password"


async def full_flow(target: str, secret_file: Path) -> tuple[list[str], list[str]]:
    """Every RPC, successes and failures alike, some as the gateway (the secret in `secret_file`); returns
    the tokens issued and the ids seen."""
    tokens: list[str] = []
    ids: list[str] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for number, password in enumerate(PASSWORDS):
            email = f"user{number}@example.com"
            registered = await stub.Register(auth_pb2.RegisterRequest(email=email, password=password))
            ids.append(registered.user_id)
            forwarded = as_gateway(
                ("x-forwarded-for", "203.0.113.9"),
                ("grpcgateway-user-agent", "Leakcheck/1"),
                secret_file=secret_file,
            )
            pairs = [
                await stub.Login(auth_pb2.LoginRequest(email=email, password=password), metadata=forwarded)
                for _ in range(3)
            ]
            for pair in pairs:
                tokens += [pair.access_token, pair.refresh_token]
                ids.append(pair.session_id)
            renewed = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pairs[0].refresh_token))
            replayed = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pairs[0].refresh_token))
            tokens += [renewed.access_token, renewed.refresh_token, replayed.access_token]
            await stub.Logout(auth_pb2.LogoutRequest(refresh_token=pairs[1].refresh_token))
            bearer = (("authorization", f"Bearer {pairs[2].access_token}"),)
            await stub.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer)
            wrong_gateway = ((gateway_secret.METADATA_KEY, "a wrong gateway secret of 32 characters!"),)
            failures: list[Any] = [
                stub.Login(auth_pb2.LoginRequest(email=email, password=WRONG_PASSWORD)),
                stub.Login(
                    auth_pb2.LoginRequest(email=email, password=WRONG_PASSWORD), metadata=wrong_gateway
                ),
                stub.Register(auth_pb2.RegisterRequest(email=email, password=password)),
                stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pairs[1].refresh_token)),
                stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pairs[2].access_token)),
                stub.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer),
                stub.LogoutAll(
                    auth_pb2.LogoutAllRequest(), metadata=(("authorization", f"Bearer {password}"),)
                ),
            ]
            for failing in failures:
                try:
                    await failing
                except grpc.aio.AioRpcError:
                    continue
                raise AssertionError("expected a failure")
        # Throttled attempts log too.
        for _ in range(7):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.Login(auth_pb2.LoginRequest(email="user0@example.com", password=WRONG_PASSWORD))
    return tokens, ids


def secrets_of(tokens: list[str], gateway: str) -> list[str]:
    """Each token whole, and the part that makes it unforgeable alone (a log that cut the token would
    still leak that): an access token's signature, an opaque refresh token's MAC; the gateway secret."""
    parts = [token.rsplit(".", 1)[1] if "." in token else token.rsplit("_", 1)[1] for token in tokens]
    return [*PASSWORDS, WRONG_PASSWORD, *tokens, *parts, gateway]


async def test_no_token_or_password_is_in_the_logs_or_the_database_files(tmp_path):
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server = await asyncio.to_thread(start_server_process, data_dir, log, log_level="DEBUG")
    try:
        tokens, ids = await full_flow(server.target, data_dir / gateway_secret.FILE_NAME)
        # While it runs, the recent writes sit in the WAL: copy the files as they are now.
        running_copy = tmp_path / "while-running"
        running_copy.mkdir()
        for path in data_dir.glob("authsvc.db*"):
            shutil.copy(path, running_copy / path.name)
    finally:
        await asyncio.to_thread(server.stop)
    files = [log, *running_copy.iterdir(), *data_dir.glob("authsvc.db*")]
    assert {path.name for path in running_copy.iterdir()} >= {"authsvc.db", "authsvc.db-wal"}
    contents = {path: Path(path).read_bytes() for path in files}

    # The scan reads what was written: ids and events are there, in the log and in the database.
    everything = b"".join(contents.values())
    assert all(identifier.encode() in everything for identifier in ids)
    assert b'"event": "login"' in contents[log] and b'"event": "login_throttled"' in contents[log]
    assert b"wrong gateway secret" in contents[log]

    for secret in secrets_of(tokens, gateway_secret.read(data_dir / gateway_secret.FILE_NAME)):
        leaks = [path.name for path, content in contents.items() if secret.encode() in content]
        assert leaks == [], f"a secret ({secret[:12]}...) is in {leaks}"
