"""Load generation for `make bench`, run inside client processes apart from the server.

Each `LoadSpec` names one scenario; `run_load` drives it with a fixed number of calls in flight for a
fixed time and returns every latency, so the parent computes percentiles over all of them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass
class LoadSpec:
    kind: str  # health | login | refresh | logout | logout_all | mixed, optionally prefixed "rest_"
    target: str  # gRPC host:port, or the gateway's base URL for rest_ kinds
    concurrency: int
    seconds: float
    credentials: list[tuple[str, str]] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    seed: int = 1


@dataclass
class LoadResult:
    kind: str
    latencies: list[float]
    errors: dict[str, int]
    elapsed: float
    per_op: dict[str, list[float]] = field(default_factory=dict)


class _Grpc:
    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def health_check(self) -> None:
        await self.health.Check(health_pb2.HealthCheckRequest())

    async def login(self, email: str, password: str) -> str:
        pair = await self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        return str(pair.refresh_token)

    async def refresh(self, token: str) -> str:
        pair = await self.auth.Refresh(auth_pb2.RefreshRequest(refresh_token=token))
        return str(pair.refresh_token)

    async def logout(self, token: str) -> None:
        await self.auth.Logout(auth_pb2.LogoutRequest(refresh_token=token))

    async def logout_all(self, access_token: str) -> None:
        await self.auth.LogoutAll(
            auth_pb2.LogoutAllRequest(), metadata=(("authorization", f"Bearer {access_token}"),)
        )

    async def close(self) -> None:
        await self.channel.close(None)


class _Rest:
    def __init__(self, base_url: str, concurrency: int) -> None:
        self.base = base_url.rstrip("/")
        connector = aiohttp.TCPConnector(limit=concurrency)
        self.http = aiohttp.ClientSession(connector=connector)

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        async with self.http.post(self.base + path, json=body, headers=headers) as response:
            payload = await response.json()
            if response.status >= 400:
                raise RuntimeError(f"HTTP {response.status} {payload.get('code')}")
            return payload

    async def health_check(self) -> None:
        async with self.http.get(self.base + "/healthz") as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")

    async def login(self, email: str, password: str) -> str:
        return str(
            (await self._post("/api/v1/auth/login", {"email": email, "password": password}))["refresh_token"]
        )

    async def refresh(self, token: str) -> str:
        return str((await self._post("/api/v1/auth/refresh", {"refresh_token": token}))["refresh_token"])

    async def logout(self, token: str) -> None:
        await self._post("/api/v1/auth/logout", {"refresh_token": token})

    async def logout_all(self, access_token: str) -> None:
        await self._post("/api/v1/auth/logout-all", {}, {"Authorization": f"Bearer {access_token}"})

    async def close(self) -> None:
        await self.http.close()


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code().name
    return str(exc) or type(exc).__name__


async def _drive(spec: LoadSpec) -> LoadResult:
    rest = spec.kind.startswith("rest_")
    kind = spec.kind.removeprefix("rest_")
    client: _Grpc | _Rest = _Rest(spec.target, spec.concurrency) if rest else _Grpc(spec.target)
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
            await client.health_check()
            return "health"
        if kind == "login":
            await client.login(*spec.credentials[worker % len(spec.credentials)])
            return "login"
        if kind == "refresh":
            chains[worker] = await client.refresh(chains[worker])
            return "refresh"
        if kind == "logout":
            if not spare:
                raise LookupError("out of sessions")
            await client.logout(spare.pop())
            return "logout"
        if kind == "logout_all":
            await client.logout_all(spec.access_tokens.pop())
            return "logout_all"
        draw = rng.random()
        if draw < 0.90:
            chains[worker] = await client.refresh(chains[worker])
            return "refresh"
        if draw < 0.99:
            await client.login(*spec.credentials[worker % len(spec.credentials)])
            return "login"
        if spare:
            await client.logout(spare.pop())
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


def run_load(spec: LoadSpec) -> LoadResult:
    """Entry point of a client process."""
    return asyncio.run(_drive(spec))
