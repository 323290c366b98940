"""Worker processes on one port: the parent that starts, restarts and stops them, and the worker's link.

Both commands use it: `authsvc serve --workers N` (authsvc/app/workers.py) and `authsvc-gateway --workers N`
(authsvc/gateway_cli.py). Every worker binds the same port with SO_REUSEPORT and the kernel spreads new
connections over them; the parent binds it too (never listening) so port 0 is resolved once and the port
stays the service's while a worker restarts.

A worker is its own command re-executed with `--worker-of FD` (subprocess), not a multiprocessing child:
it is then exactly the one-process program (same start-up, same one-line errors and exit status),
nothing is pickled, and nothing of the parent is inherited (fork would copy grpc's threads, which grpc
forbids). FD is one end of a socket pair: the worker writes `ready` on it once it serves, and stops when
the parent's end closes, so no worker outlives its parent.

It imports nothing of the service's layers, so the gateway may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "WORKER_FLAG",
    "PortError",
    "Supervisor",
    "WorkerLink",
    "cpu_count",
    "parse_workers",
    "reserve_port",
    "tag_logs_with_pid",
]

log = logging.getLogger("authsvc")

WORKER_FLAG = "--worker-of"
READY = b"ready\n"
# A worker that ran this long before it died is restarted at once; one dying sooner waits, twice as long
# each time up to the maximum, so a crash loop does not spin.
STABLE_SECONDS = 10.0
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


class PortError(Exception):
    """The address cannot be bound (in use, or not allowed)."""


def parse_workers(text: str) -> int:
    """A number of workers as written (AUTHSVC_WORKERS, --workers ...): a number, or `auto` for the CPUs this
    process may use. ValueError when it is neither; the caller says whether the number is allowed."""
    if text.strip().lower() == "auto":
        return cpu_count()
    return int(text)


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask, as a container's cpuset limits it)."""
    counted = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if counted is not None:
        return int(counted() or 1)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---- the worker's side ----------------------------------------------------------------------------------


class WorkerLink:
    """A worker's end of the socket pair its parent passed as `--worker-of FD`."""

    def __init__(self, fd: int) -> None:
        self._socket = socket.socket(fileno=fd)

    def ready(self) -> None:
        self._socket.sendall(READY)

    def on_parent_gone(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the parent's end closes: the parent died, the worker must stop too."""
        self._socket.setblocking(False)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = self._socket.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self._socket.fileno())
                callback()

        loop.add_reader(self._socket.fileno(), readable)


def tag_logs_with_pid() -> None:
    """Add `worker_pid` to every line a worker logs: which process answered a call."""
    pid = os.getpid()

    def tag(record: logging.LogRecord) -> bool:
        record.worker_pid = pid
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)


# ---- the parent's side ----------------------------------------------------------------------------------


def reserve_port(host: str, port: int) -> tuple[int, list[socket.socket]]:
    """Bind HOST:PORT with SO_REUSEPORT, for as long as the workers run; return the port (port 0 resolved)
    and the sockets to close at the end. They never listen, so the kernel gives them no connection.

    Raise PortError when the port is taken (by anyone: the first bind is without SO_REUSEPORT, so another
    group of workers counts too) or not allowed."""
    try:
        candidates = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise PortError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    held: list[socket.socket] = []
    for family, kind, protocol, _name, address in candidates:
        sock = socket.socket(family, kind, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if port != 0:
                with socket.socket(family, kind, protocol) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((address[0], port, *address[2:]))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((address[0], port, *address[2:]))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES) or not held:
                for other in held:
                    other.close()
                raise PortError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
            continue  # another family of the same name (::1 beside 127.0.0.1) this machine lacks
        held.append(sock)
        port = int(sock.getsockname()[1])
    return port, held


@dataclass
class _Worker:
    """One slot of the parent: the process serving in it now, and its link."""

    process: asyncio.subprocess.Process | None = None
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    started: float = 0.0
    backoff: float = 0.0
    serving: bool = False  # said `ready`: its signal handlers are in place

    def close_link(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def signal(self, signum: int, *, only_serving: bool = False) -> None:
        if only_serving and not self.serving:
            return  # SIGHUP would kill it before its handlers are in place; it reads everything at start
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


@dataclass
class Supervisor:
    """Run `count` workers, each `command` + [WORKER_FLAG, FD] with `environment`, until SIGTERM or SIGINT.

    `on_exit(pid)` is told of every worker that exited; `stop_seconds` is how long stopping workers get
    before they are killed."""

    command: Sequence[str]
    count: int
    environment: dict[str, str]
    stop_seconds: float
    on_exit: Callable[[int], None] = lambda _pid: None
    workers: list[_Worker] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def _spawn(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        try:
            worker.process = await asyncio.create_subprocess_exec(
                *self.command,
                WORKER_FLAG,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env=self.environment,
            )
        finally:
            theirs.close()
        worker.reader, worker.writer = await asyncio.open_unix_connection(sock=ours)
        worker.started = time.monotonic()
        worker.serving = False

    async def _ready(self, worker: _Worker) -> int | None:
        """None once the worker says it serves; its exit status when it exits first."""
        assert worker.reader is not None and worker.process is not None
        line = await worker.reader.readline()
        if line == READY:
            worker.serving = True
            return None
        return await worker.process.wait() or 1

    async def _start_all(self) -> int | None:
        """Start every worker; the first alone, so a setting it cannot start with is one line on stderr
        (its own), not N. The exit status of a worker that could not start, else None."""
        self.workers = [_Worker() for _ in range(self.count)]
        await self._spawn(self.workers[0])
        failed = await self._ready(self.workers[0])
        if failed is not None:
            return failed
        for worker in self.workers[1:]:
            await self._spawn(worker)
        for status in await asyncio.gather(*(self._ready(worker) for worker in self.workers[1:])):
            if status is not None:
                return status
        return None

    async def _keep(self, worker: _Worker) -> None:
        """Wait for the worker to exit; unless the parent is stopping, start another in its place."""
        while True:
            assert worker.process is not None
            status = await worker.process.wait()
            worker.close_link()
            self.on_exit(worker.process.pid)
            if self.stopping.is_set():
                return
            ran = time.monotonic() - worker.started
            worker.backoff = (
                0.0
                if ran >= STABLE_SECONDS
                else min(MAX_BACKOFF_SECONDS, max(FIRST_BACKOFF_SECONDS, worker.backoff * 2))
            )
            log.warning(
                "worker exited, starting another",
                extra={"worker_pid": worker.process.pid, "exit_status": status, "restart_in": worker.backoff},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), worker.backoff)
                return
            await self._spawn(worker)
            if self.stopping.is_set():  # told to stop while this one started
                worker.signal(signal.SIGTERM)
            await self._ready(worker)  # or it exits first: then the loop waits again and restarts it

    def _forward(self, signum: int) -> None:
        log.info("forwarding %s to the workers", signal.Signals(signum).name)
        for worker in self.workers:
            worker.signal(signum, only_serving=True)

    async def _stop(self, keepers: list[asyncio.Task[None]]) -> None:
        """SIGTERM every worker (each finishes its in-flight calls), wait for all, kill what lingers."""
        self.stopping.set()
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        waits = [worker.process.wait() for worker in self.workers if worker.process is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits, *keepers), self.stop_seconds)
        except TimeoutError:
            for worker in self.workers:
                worker.signal(signal.SIGKILL)
            await asyncio.gather(*(w.process.wait() for w in self.workers if w.process is not None))
        for worker in self.workers:
            worker.close_link()

    async def run(self, *, forward_sighup: bool = True) -> int:
        """Start the workers, keep them running, and stop them all on SIGTERM or SIGINT (status 0). A
        worker that cannot start stops the others, and its exit status is returned."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stopping.set)
        if forward_sighup:
            loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)
        starting = asyncio.ensure_future(self._start_all())
        told_to_stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait((starting, told_to_stop), return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # SIGTERM during start-up: stop what started
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await self._stop([])
            log.info("stopped")
            return 0
        told_to_stop.cancel()
        failed = starting.result()
        if failed is not None:
            await self._stop([])
            return failed
        pids = [worker.process.pid for worker in self.workers if worker.process is not None]
        log.info("workers serving", extra={"workers": len(pids), "worker_pids": pids})
        keepers = [asyncio.create_task(self._keep(worker)) for worker in self.workers]
        await self.stopping.wait()
        log.info("stopping: every worker finishes its in-flight calls")
        await self._stop(keepers)
        log.info("stopped")
        return 0
