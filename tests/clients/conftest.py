"""Fixtures for the client library's tests: both clients against the real in-process server, call
counters, and a scripted fake AuthService for what the real one cannot be made to do on demand."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from authsvc_client import AsyncAuthClient, AuthClient
from authsvc_proto.v1 import auth_pb2

PASSWORD = "correct horse battery"


class ThreadedClient:
    """The blocking AuthClient with each call run in a thread, so the in-process server keeps serving."""

    def __init__(self, client: AuthClient) -> None:
        self.sync = client

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


@pytest.fixture(params=["async", "sync"])
async def client(request, auth_server) -> AsyncIterator[Any]:
    """Each test runs once with AsyncAuthClient and once with AuthClient."""
    if request.param == "async":
        aio = AsyncAuthClient(auth_server.target)
        yield aio
        await aio.close()
    else:
        sync = AuthClient(auth_server.target)
        yield ThreadedClient(sync)
        sync.close()


class CallCounter(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Counts the RPCs an AsyncAuthClient sends, by method name (`Refresh`, `GetJwks`, ...)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else method
        self.calls[name.rsplit("/", 1)[-1]] += 1
        return await continuation(client_call_details, request)


class SyncCallCounter(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Counts the RPCs an AuthClient sends, by method name; thread-safe enough for Counter updates."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.calls[client_call_details.method.rsplit("/", 1)[-1]] += 1
        return continuation(client_call_details, request)


Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


async def start_fake(
    behaviours: dict[str, Behaviour],
    port: int = 0,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.aio.Server, str]:
    """A fake AuthService answering the named methods (e.g. "GetJwks") with the given coroutines."""
    handlers = {}
    for name, behaviour in behaviours.items():
        method = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name[name]
        request_class = getattr(auth_pb2, method.input_type.name)
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=request_class.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("authsvc.v1.AuthService", handlers),)
    )
    address = f"127.0.0.1:{port}"
    bound = (
        server.add_insecure_port(address)
        if credentials is None
        else server.add_secure_port(address, credentials)
    )
    await server.start()
    return server, f"127.0.0.1:{bound}"
