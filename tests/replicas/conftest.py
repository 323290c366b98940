"""Two `authsvc serve` processes against one PostgreSQL database, deployed as docs/operations.md says:
`authsvc migrate` once, then each replica with `serve --no-migrate`, keys in one shared directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import databases
from tests.ports import free_port
from tests.server_process import wait_serving

START_SECONDS = 30


@dataclass
class Replica:
    name: str
    target: str
    process: subprocess.Popen[bytes]
    log: Path


def _authsvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "authsvc.cli", *args]


def _stop(replica: Replica) -> None:
    replica.process.send_signal(signal.SIGTERM)
    try:
        replica.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait()


@dataclass
class Deployment:
    replicas: list[Replica]
    database: databases.PostgresDatabase
    environment: dict[str, str]  # what the replicas share: an `authsvc` command run with it acts on them


@contextmanager
def deploy(admin_url: str, folder: Path, **settings: str) -> Iterator[Deployment]:
    """Two replicas serving one fresh PostgreSQL database, keys in `folder`/shared-keys; stopped and the
    database dropped after. `settings` are extra AUTHSVC_* variables (without the prefix)."""
    database = databases.create_database_sync(admin_url, "authsvc_replicas", migrated=False)
    environment = {
        **os.environ,
        "AUTHSVC_DATABASE_URL": database.url,
        "AUTHSVC_DATA_DIR": str(folder / "data-cli"),
        "AUTHSVC_KEYS_DIR": str(folder / "shared-keys"),
        "AUTHSVC_BCRYPT_ROUNDS": "4",
        "AUTHSVC_LOG_LEVEL": "WARNING",
        **{f"AUTHSVC_{name.upper()}": value for name, value in settings.items()},
    }
    started: list[Replica] = []
    try:
        subprocess.run(_authsvc("migrate"), env=environment, check=True, capture_output=True, timeout=60)
        for name in ("a", "b"):
            target = f"127.0.0.1:{free_port()}"
            log = folder / f"{name}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    _authsvc("serve", "--no-migrate"),
                    env={
                        **environment,
                        "AUTHSVC_GRPC_LISTEN": target,
                        "AUTHSVC_DATA_DIR": str(folder / f"data-{name}"),
                    },
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(name, target, process, log))
        for replica in started:
            wait_serving(replica.target, replica.process, replica.log, START_SECONDS)
        yield Deployment(started, database, environment)
    finally:
        for replica in started:
            _stop(replica)
        databases.drop_database_sync(database)


@pytest.fixture(scope="module")
def deployment(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two replicas serving one fresh PostgreSQL database; stopped and the database dropped after."""
    with deploy(postgres_admin_url, tmp_path_factory.mktemp("replicas")) as running:
        yield running
