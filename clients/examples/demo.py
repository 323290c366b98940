"""The whole client story in one run, nothing to set up: starts authsvc (a temporary data directory, a
free port), then the guarded Greeter, and walks through register, login, a guarded call, refresh by the
token keeper, and logout, printing what each step answers.

    .venv/bin/python clients/examples/demo.py
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time

from authsvc_client import (
    AsyncAuthClient,
    AsyncTokenKeeper,
    BearerGuard,
    DeadlineExceeded,
    InvalidCredentials,
    Unavailable,
)
from greeter import call_hello, start_greeter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_until_serving(client: AsyncAuthClient, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await client.get_jwks(timeout=1)
            return
        except (Unavailable, DeadlineExceeded):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def demo(auth_target: str, secret: str) -> None:
    async with AsyncAuthClient(auth_target, introspection_secret=secret) as auth:
        await _wait_until_serving(auth)
        account = await auth.register("Ada@Example.com", "correct horse battery")
        print(f"registered {account.email}")
        try:
            await auth.login("ada@example.com", "wrong password")
        except InvalidCredentials as error:
            print(f"wrong password -> {type(error).__name__} ({error.reason})")

        guard = BearerGuard(auth, check_revocation=True)
        server, port = await start_greeter(guard, "127.0.0.1:0")
        greeter = f"127.0.0.1:{port}"
        try:
            keeper = await AsyncTokenKeeper.login(auth, "ada@example.com", "correct horse battery")
            print(f"greeter, no token -> {await call_hello(greeter, None)}")
            print(f"greeter, forged token -> {await call_hello(greeter, 'e30.e30.sig')}")
            print(f"greeter, with token -> {await call_hello(greeter, await keeper.access_token())}")
            token = await keeper.refresh()
            print(f"greeter, after refresh -> {await call_hello(greeter, token)}")
            sessions = await auth.list_sessions(token)
            print(f"live sessions: {len(sessions)}")
            await keeper.logout()
            print(f"greeter, after logout -> {await call_hello(greeter, token)}")
        finally:
            await server.stop(None)


def main() -> int:
    port = _free_port()
    secret = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "AUTHSVC_GRPC_LISTEN": f"127.0.0.1:{port}",
            "AUTHSVC_DATA_DIR": data_dir,
            "AUTHSVC_INTROSPECTION_SECRET": secret,
        }
        with open(os.path.join(data_dir, "authsvc.log"), "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "authsvc.cli", "serve"], env=env, stdout=log, stderr=log
            )
            try:
                asyncio.run(demo(f"127.0.0.1:{port}", secret))
            finally:
                server.terminate()
                server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
