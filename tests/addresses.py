"""Calls from chosen loopback addresses, so a test can be several clients at once.

The server learns a caller's address from the TCP peer, and Linux routes all of 127.0.0.0/8 to the
loopback interface, so a socket bound to 127.0.0.N before it connects is seen as 127.0.0.N. grpcio has
no channel option to choose that source address, so `relay_from` listens on 127.0.0.1 and relays each
connection to the target from a socket bound to the chosen address. For HTTP, aiohttp binds directly:
`aiohttp.TCPConnector(local_addr=(address, 0))`, which `http_from` does.

    async with ClientsAt(server.target) as clients:
        stub = await clients.stub(loopback(2))  # the server sees 127.0.0.2

The server believes a forwarded address (`x-forwarded-for`) only from its REST gateway, which shows the
gateway secret (authsvc/gateway_secret.py). Every in-process server and gateway of a test run read the
one secret file `GATEWAY_SECRET_FILE` (tests/conftest.py's make_settings, tests/gateway/conftest.py's
running_gateway), as both processes of `make run` read the data dir's; `as_gateway(...)` is metadata that
a test sends to pose as that gateway.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType

import aiohttp
import grpc
from authsvc_proto.v1 import auth_pb2_grpc

from authsvc import gateway_secret

RELAY_HOST = "127.0.0.1"
CHUNK = 65536
FORWARDED_FOR = "x-forwarded-for"
GATEWAY_SECRET_FILE = Path(tempfile.mkdtemp(prefix="authsvc-test-gateway-")) / gateway_secret.FILE_NAME
atexit.register(shutil.rmtree, GATEWAY_SECRET_FILE.parent, True)

Metadata = tuple[tuple[str, str], ...]


def as_gateway(*entries: tuple[str, str], secret_file: Path = GATEWAY_SECRET_FILE) -> Metadata:
    """`entries` and the gateway secret: metadata whose x-forwarded-for and grpcgateway-user-agent a
    server reading `secret_file` believes, as it believes its REST gateway's."""
    return (*entries, (gateway_secret.METADATA_KEY, gateway_secret.load_or_create(secret_file)))


def forwarded_for(address: str) -> Metadata:
    """An `x-forwarded-for` entry alone: what any caller may write, believed only from the gateway."""
    return ((FORWARDED_FOR, address),)


def loopback(n: int) -> str:
    """The loopback address 127.0.0.n, for 1 <= n <= 254 (127.0.0.1 is what every plain channel uses)."""
    if not 1 <= n <= 254:
        raise ValueError(f"no loopback address 127.0.0.{n} here")
    return f"127.0.0.{n}"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


@asynccontextmanager
async def relay_from(source: str, target: str) -> AsyncIterator[str]:
    """Yield a `host:port` on 127.0.0.1 whose connections reach `target` (`host:port`) from `source`."""
    host, _, port = target.rpartition(":")
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                host.strip("[]"), int(port), local_addr=(source, 0)
            )
        except OSError:
            writer.close()
            return
        writers.add(upstream_writer)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        for end in (writer, upstream_writer):
            end.close()

    def start(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(relay(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(start, RELAY_HOST, 0)
    try:
        yield f"{RELAY_HOST}:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        for task in list(tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()


@asynccontextmanager
async def http_from(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client whose connections come from `address` (a loopback address)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


class ClientsAt:
    """Stubs of the AuthService at `target`, one per source address, made on first use and closed together."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._stubs: dict[str, auth_pb2_grpc.AuthServiceAsyncStub] = {}
        self._exits = AsyncExitStack()

    async def stub(self, source: str) -> auth_pb2_grpc.AuthServiceAsyncStub:
        """A stub whose calls the server sees coming from `source` (a loopback address)."""
        if source not in self._stubs:
            relayed = await self._exits.enter_async_context(relay_from(source, self._target))
            channel = grpc.aio.insecure_channel(relayed)
            self._exits.push_async_callback(channel.close, None)
            self._stubs[source] = auth_pb2_grpc.AuthServiceStub(channel)
        return self._stubs[source]

    async def close(self) -> None:
        await self._exits.aclose()
        self._stubs.clear()

    async def __aenter__(self) -> ClientsAt:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()
