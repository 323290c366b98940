"""The `authsvc` command: serve, migrate, and key management."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from authsvc.clock import system_clock
from authsvc.domain.keys import KeyStoreError, add_key
from authsvc.logs import configure_logging
from authsvc.settings import Settings, SettingsError
from authsvc.store import StoreError
from authsvc.store.migrate import migrate
from authsvc.transport.server import StartupError, start_server

log = logging.getLogger("authsvc")


async def _serve(settings: Settings) -> None:
    running = await start_server(settings)
    log.info("serving", extra={"grpc_listen": running.target})
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping: finishing in-flight calls")
    await running.stop(settings.shutdown_grace_seconds)
    log.info("stopped")


async def _migrate(settings: Settings) -> None:
    await migrate(settings.database_url, connect_timeout_seconds=settings.db_timeout_seconds)
    log.info("schema is at the newest revision")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="authsvc", description="authsvc: gRPC authentication service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate the store, then serve gRPC on AUTHSVC_GRPC_LISTEN")
    serve.add_argument("--no-migrate", action="store_true", help="refuse to start on an unmigrated store")
    commands.add_parser("migrate", help="bring the database schema to the newest revision")
    keys = commands.add_parser("keys", help="signing keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_commands.add_parser("rotate", help="add a new signing key, used from the next start")
    args = parser.parse_args(argv)

    configure_logging(os.environ.get("AUTHSVC_LOG_LEVEL", "INFO"))
    try:
        settings = Settings.from_env(os.environ)
        if args.command == "serve" and args.no_migrate:
            settings = Settings(**{**settings.__dict__, "migrate_on_start": False})
        log.info("configuration", extra={"config": settings.describe()})
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "keys":
            key = add_key(settings.signing_keys_dir, system_clock())
            print(f"added signing key {key.kid}; servers sign with it after their next start")
    except (SettingsError, StartupError, KeyStoreError) as exc:
        print(f"authsvc: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"authsvc: database: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
