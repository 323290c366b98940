"""The guard as a grpc.aio server interceptor: every guarded call is verified by a `BearerGuard` before
its handler runs, and the handler reads the caller with `current_user()`.

Refusals are answered as authsvc's own are: UNAUTHENTICATED (or UNAVAILABLE when the check cannot be
made) with a google.rpc.ErrorInfo carrying the reason word, so callers branch on the same words.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextvars import ContextVar
from typing import Any

import grpc
from authsvc_proto.errors import rich_status

from authsvc_client.guard import BearerGuard
from authsvc_client.verification import GuardError, User

_current_user: ContextVar[User | None] = ContextVar("authsvc_client_current_user", default=None)


def current_user() -> User:
    """The user of the RPC being handled, as set by `GuardInterceptor`; LookupError outside one."""
    user = _current_user.get()
    if user is None:
        raise LookupError("no authenticated user: is the handler behind GuardInterceptor?")
    return user


def status_for(error: GuardError) -> grpc.Status:
    """A status carrying a google.rpc.ErrorInfo with the reason, as authsvc's own answers do."""
    return rich_status(error.code, error.message, error.reason)


Context = grpc.aio.ServicerContext[Any, Any]


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Refuses calls without a valid bearer access token; handlers read the caller by `current_user()`.

    The check runs inside the handler's own task, so the user is set in the handler's context. Guarded
    handlers are grpc.aio style: coroutines, and async generators for streamed answers; a plain function
    handler is called on the event loop, not in grpc's executor.
    """

    def __init__(self, guard: BearerGuard, exempt: Collection[str] = ()) -> None:
        self._guard = guard
        self._exempt = frozenset(exempt)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method in self._exempt:
            return handler
        return _guarded(handler, self._authenticate)

    async def _authenticate(self, context: Context) -> None:
        try:
            user = await self._guard.verify_bearer(context.invocation_metadata() or ())
        except GuardError as exc:
            status = status_for(exc)
            await context.abort(status.code, status.details, status.trailing_metadata)
        _current_user.set(user)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def _guarded(handler: Any, authenticate: Callable[[Context], Awaitable[None]]) -> Any:
    """The same handler, authenticating first; each of the four call shapes keeps its serializers."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _answering(handler.unary_unary, authenticate), **serializers
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _answering(handler.stream_unary, authenticate), **serializers
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream, authenticate), **serializers
        )
    return grpc.stream_stream_rpc_method_handler(
        _streaming(handler.stream_stream, authenticate), **serializers
    )


def _answering(
    behaviour: Callable[[Any, Context], Any], authenticate: Callable[[Context], Awaitable[None]]
) -> Callable[[Any, Context], Awaitable[Any]]:
    """A handler with one answer (to one request or to a request stream), authenticating first."""

    async def guarded(request: Any, context: Context) -> Any:
        await authenticate(context)
        return await _maybe_await(behaviour(request, context))

    return guarded


def _streaming(
    behaviour: Callable[[Any, Context], AsyncIterator[Any]],
    authenticate: Callable[[Context], Awaitable[None]],
) -> Callable[[Any, Context], AsyncIterator[Any]]:
    """A handler that streams its answers (to one request or to a request stream), authenticating first."""

    async def guarded(request: Any, context: Context) -> AsyncIterator[Any]:
        await authenticate(context)
        async for item in behaviour(request, context):
            yield item

    return guarded
