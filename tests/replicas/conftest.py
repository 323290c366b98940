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
from tests.replicas import metrics
from tests.server_process import wait_serving

START_SECONDS = 30
STOP_SECONDS = 20  # the drain and the shutdown grace, with a margin
Popen = subprocess.Popen[bytes]


@dataclass
class Replica:
    name: str
    target: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics: str  # HOST:PORT of its Prometheus endpoint

    def served(self, method: str) -> int:
        """How many `method` calls (e.g. "Refresh") this process has answered, by its metrics."""
        return metrics.served(self.metrics, method)


def _authsvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "authsvc.cli", *args]


def _stop(replica: Replica) -> None:
    replica.process.send_signal(signal.SIGTERM)
    try:
        replica.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait()


@dataclass
class Deployment:
    replicas: list[Replica]
    database: databases.PostgresDatabase
    environment: dict[str, str]  # what the replicas share: an `authsvc` command run with it acts on them
    folder: Path

    def relaunch(self, replica: Replica) -> None:
        """Start `replica` again, after it exited, on the same addresses and data; wait until SERVING."""
        assert replica.process.poll() is not None, "the replica is still running"
        replica.process = _launch(self, replica.name, replica.target, replica.metrics, replica.log)
        wait_serving(replica.target, replica.process, replica.log, START_SECONDS)


def _launch(deployment: Deployment, name: str, target: str, metrics_listen: str, log: Path) -> Popen:
    with log.open("ab") as output:
        return subprocess.Popen(
            _authsvc("serve", "--no-migrate"),
            env={
                **deployment.environment,
                "AUTHSVC_GRPC_LISTEN": target,
                "AUTHSVC_METRICS_LISTEN": metrics_listen,
                "AUTHSVC_DATA_DIR": str(deployment.folder / f"data-{name}"),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )


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
    deployment = Deployment(started, database, environment, folder)
    try:
        subprocess.run(_authsvc("migrate"), env=environment, check=True, capture_output=True, timeout=60)
        for name in ("a", "b"):
            target, metrics_listen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            log = folder / f"{name}.log"
            process = _launch(deployment, name, target, metrics_listen, log)
            started.append(Replica(name, target, process, log, metrics_listen))
        for replica in started:
            wait_serving(replica.target, replica.process, replica.log, START_SECONDS)
        yield deployment
    finally:
        for replica in started:
            _stop(replica)
        databases.drop_database_sync(database)


@pytest.fixture(scope="module")
def deployment(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two replicas serving one fresh PostgreSQL database; stopped and the database dropped after."""
    with deploy(postgres_admin_url, tmp_path_factory.mktemp("replicas")) as running:
        yield running
