"""A throwaway PostgreSQL server of the test's own: initdb into a temporary folder, its own port.

PostgreSQL refuses to run as root, so as root the server's commands run as the `postgres` OS user
(runuser) on a folder that user owns.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.ports import free_port

COMMAND_SECONDS = 60


class PostgresNotInstalled(Exception):
    """No initdb/pg_ctl on this machine."""


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresNotInstalled("initdb not found (looked in /usr/lib/postgresql/*/bin and PATH)")


class TemporaryPostgres:
    """One PostgreSQL server in a temporary folder. `create` runs initdb; then start/stop at will."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._as_root = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="authsvc-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self._bin / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self._as_root else command

    def create(self) -> None:
        subprocess.run(
            self._command("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"),
            check=True,
            capture_output=True,
            timeout=COMMAND_SECONDS,
        )

    async def _run(self, program: str, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._command(program, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await asyncio.wait_for(process.communicate(), COMMAND_SECONDS)
        if process.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed: {output.decode(errors='replace')}")

    async def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        await self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )

    async def stop_immediately(self) -> None:
        """Stop at once, as a crash would: connections are cut, nothing is shut down cleanly."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        subprocess.run(
            self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"),
            capture_output=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    def _processes(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False, timeout=10
        ).stdout.split()
        return [postmaster, *(int(pid) for pid in children)]

    def freeze(self) -> None:
        """Stop every server process (SIGSTOP): connections stay open but nothing answers."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)


def temporary_postgres() -> TemporaryPostgres:
    """A TemporaryPostgres, or skip the test where none can run here (fail instead under CI=true)."""
    try:
        return TemporaryPostgres()
    except (PostgresNotInstalled, KeyError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot run a PostgreSQL server of the test's own: {exc!r}")
        pytest.skip(f"cannot run a PostgreSQL server of the test's own: {exc!r}")
