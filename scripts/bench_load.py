"""Load generation for `make bench`, run inside client processes apart from the server.

Each `LoadSpec` names one scenario; `run_load` drives it with a fixed number of calls in flight for a
fixed time and returns every latency, so the parent computes percentiles over all of them.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass
class LoadSpec:
    # health | login | refresh | logout | logout_all | mixed, optionally prefixed "rest_"; or latency_pair
    kind: str
    target: str  # gRPC host:port, or the gateway's base URL for rest_ kinds
    concurrency: int
    seconds: float
    credentials: list[tuple[str, str]] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    seed: int = 1
    rest_target: str = ""  # latency_pair: the gateway's base URL beside the gRPC target
    connections: int = 1  # gRPC channels (TCP connections) the calls in flight are spread over


@dataclass
class LoadResult:
    kind: str
    latencies: list[float]
    errors: dict[str, int]
    elapsed: float
    per_op: dict[str, list[float]] = field(default_factory=dict)


class _Grpc:
    """The gRPC calls over `connections` channels, worker i on channel i % connections. Each channel has
    its own TCP connection (no shared subchannel pool), so a server whose workers share one port
    (SO_REUSEPORT) sees several connections to spread, as it would from several clients."""

    def __init__(self, target: str, connections: int = 1) -> None:
        options = [("grpc.use_local_subchannel_pool", 1)] if connections > 1 else []
        self.channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(connections)]
        self.auth = [auth_pb2_grpc.AuthServiceStub(channel) for channel in self.channels]
        self.health = [health_pb2_grpc.HealthStub(channel) for channel in self.channels]

    async def health_check(self, worker: int = 0) -> None:
        await self.health[worker % len(self.health)].Check(health_pb2.HealthCheckRequest())

    async def login(self, email: str, password: str, worker: int = 0) -> str:
        auth = self.auth[worker % len(self.auth)]
        pair = await auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        return str(pair.refresh_token)

    async def refresh(self, token: str, worker: int = 0) -> str:
        auth = self.auth[worker % len(self.auth)]
        pair = await auth.Refresh(auth_pb2.RefreshRequest(refresh_token=token))
        return str(pair.refresh_token)

    async def logout(self, token: str, worker: int = 0) -> None:
        await self.auth[worker % len(self.auth)].Logout(auth_pb2.LogoutRequest(refresh_token=token))

    async def logout_all(self, access_token: str, worker: int = 0) -> None:
        await self.auth[worker % len(self.auth)].LogoutAll(
            auth_pb2.LogoutAllRequest(), metadata=(("authorization", f"Bearer {access_token}"),)
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close(None)


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a request and reads a Content-Length answer.

    The load client shares the machine's two cores with the server and the gateway, so it does the least
    it can per request: aiohttp's client costs about twice the CPU of a grpc.aio call, which showed up
    as gateway latency and took CPU from the gateway under load.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).lower()
        marker = head.find(b"\r\ncontent-length:")
        if marker < 0:
            self.waiter.set_exception(RuntimeError("an answer without Content-Length"))
            return
        line_end = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.waiter.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the gateway closed the connection"))


class _Rest:
    """The REST calls, each worker on its own connection (opened on first use, again if closed)."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        host_port = base_url.removeprefix("http://").rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.host_header = host_port.encode()
        self.connections: dict[int, _HttpConnection] = {}

    async def _connection(self, worker: int) -> _HttpConnection:
        connection = self.connections.get(worker)
        if connection is None or connection.transport is None:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_connection(_HttpConnection, self.host, self.port)
            self.connections[worker] = connection
        return connection

    async def _request(
        self, worker: int, method: str, path: str, body: dict[str, Any] | None, bearer: str = ""
    ) -> Any:
        connection = await self._connection(worker)
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: ".encode() + self.host_header
        head += b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(payload)
        if bearer:
            head += f"Authorization: Bearer {bearer}\r\n".encode()
        connection.waiter = asyncio.get_running_loop().create_future()
        assert connection.transport is not None
        connection.transport.write(head + b"\r\n" + payload)
        status, answer = await connection.waiter
        parsed = json.loads(answer) if answer else None
        if status >= 400:
            raise RuntimeError(f"HTTP {status} {parsed.get('code') if isinstance(parsed, dict) else ''}")
        return parsed

    async def health_check(self, worker: int = 0) -> None:
        await self._request(worker, "GET", "/healthz", None)

    async def login(self, email: str, password: str, worker: int = 0) -> str:
        answer = await self._request(
            worker, "POST", "/api/v1/auth/login", {"email": email, "password": password}
        )
        return str(answer["refresh_token"])

    async def refresh(self, token: str, worker: int = 0) -> str:
        answer = await self._request(worker, "POST", "/api/v1/auth/refresh", {"refresh_token": token})
        return str(answer["refresh_token"])

    async def logout(self, token: str, worker: int = 0) -> None:
        await self._request(worker, "POST", "/api/v1/auth/logout", {"refresh_token": token})

    async def logout_all(self, access_token: str, worker: int = 0) -> None:
        await self._request(worker, "POST", "/api/v1/auth/logout-all", {}, bearer=access_token)

    async def close(self) -> None:
        for connection in self.connections.values():
            if connection.transport is not None:
                connection.transport.close()


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code().name
    return str(exc) or type(exc).__name__


async def _drive(spec: LoadSpec) -> LoadResult:
    if spec.kind == "latency_pair":
        return await _latency_pair(spec)
    rest = spec.kind.startswith("rest_")
    kind = spec.kind.removeprefix("rest_")
    client: _Grpc | _Rest = (
        _Rest(spec.target, spec.concurrency) if rest else _Grpc(spec.target, spec.connections)
    )
    latencies: list[float] = []
    per_op: dict[str, list[float]] = {"refresh": [], "login": [], "logout": []}
    errors: Counter[str] = Counter()
    rng = random.Random(spec.seed)
    # Each worker owns its tokens: refresh chains and logouts never race each other by accident.
    chains = list(spec.refresh_tokens[: spec.concurrency]) if kind in ("refresh", "mixed") else []
    spare = list(spec.refresh_tokens[spec.concurrency :]) if kind == "mixed" else list(spec.refresh_tokens)
    deadline = time.perf_counter() + spec.seconds

    async def one_call(worker: int) -> str:
        if kind == "health":
            await client.health_check(worker=worker)
            return "health"
        if kind == "login":
            await client.login(*spec.credentials[worker % len(spec.credentials)], worker=worker)
            return "login"
        if kind == "refresh":
            chains[worker] = await client.refresh(chains[worker], worker=worker)
            return "refresh"
        if kind == "logout":
            if not spare:
                raise LookupError("out of sessions")
            await client.logout(spare.pop(), worker=worker)
            return "logout"
        if kind == "logout_all":
            await client.logout_all(spec.access_tokens.pop(), worker=worker)  # IndexError: all done
            return "logout_all"
        draw = rng.random()
        if draw < 0.90:
            chains[worker] = await client.refresh(chains[worker], worker=worker)
            return "refresh"
        if draw < 0.99:
            await client.login(*spec.credentials[worker % len(spec.credentials)], worker=worker)
            return "login"
        if spare:
            await client.logout(spare.pop(), worker=worker)
        return "logout"

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                op = await one_call(index)
            except LookupError:
                return
            except Exception as exc:
                errors[_error_name(exc)] += 1
                continue
            elapsed = time.perf_counter() - started
            latencies.append(elapsed)
            if op in per_op:
                per_op[op].append(elapsed)

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(spec.concurrency)))
    elapsed = time.perf_counter() - began
    await client.close()
    return LoadResult(spec.kind, latencies, dict(errors), elapsed, {k: v for k, v in per_op.items() if v})


async def _latency_pair(spec: LoadSpec) -> LoadResult:
    """One call in flight, alternating a Refresh straight over gRPC and one through the gateway, so both
    p50s come from the same seconds of a noisy machine; per_op holds "grpc" and "rest"."""
    grpc_client, rest_client = _Grpc(spec.target), _Rest(spec.rest_target, 1)
    grpc_chain, rest_chain = spec.refresh_tokens[:2]
    per_op: dict[str, list[float]] = {"grpc": [], "rest": []}
    errors: Counter[str] = Counter()
    began = time.perf_counter()
    deadline = began + spec.seconds
    while time.perf_counter() < deadline:
        try:
            started = time.perf_counter()
            grpc_chain = await grpc_client.refresh(grpc_chain)
            middle = time.perf_counter()
            rest_chain = await rest_client.refresh(rest_chain)
            ended = time.perf_counter()
        except Exception as exc:
            errors[_error_name(exc)] += 1
            break  # a broken chain cannot go on
        per_op["grpc"].append(middle - started)
        per_op["rest"].append(ended - middle)
    elapsed = time.perf_counter() - began
    await grpc_client.close()
    await rest_client.close()
    return LoadResult(spec.kind, per_op["grpc"] + per_op["rest"], dict(errors), elapsed, per_op)


def run_load(spec: LoadSpec) -> LoadResult:
    """Entry point of a client process."""
    return asyncio.run(_drive(spec))
