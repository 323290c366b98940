"""One server interceptor for what operators see of each RPC: an access-log line, metrics, and the
binding that lets the domain report its outcomes to this server's metrics.

The access log is one JSON line per RPC on the `authsvc.access` logger: request id, RPC, status, duration
and peer, and the audit event the call recorded, if any, with its members (authsvc/domain/audit.py), at
the event's level when above INFO (a failed login is a warning). One line per call, not an access line
and an audit line. It never holds a request or response body, so no token, password or email reaches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from authsvc.domain import audit
from authsvc.domain.observe import bind, unbind
from authsvc.transport.client_info import request_id
from authsvc.transport.metrics import ServerMetrics

access_log = logging.getLogger("authsvc.access")

Context = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, Context], Awaitable[Any]]


if TYPE_CHECKING:  # grpc-stubs makes the class generic; at run time it is not subscriptable
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class ObservingInterceptor(_Interceptor):
    """Wraps every unary-unary handler (all of AuthService, and Health/Check); streams pass untouched."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        # The registered handlers never change: wrap each once, not on every call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        rpc = handler_call_details.method
        cached = self._wrapped.get(rpc)
        if cached is not None and cached[0] is handler:
            return cached[1]
        # grpc-stubs types the sync behaviour; on a grpc.aio server it is a coroutine function.
        wrapped = self._wrap(rpc, handler.unary_unary)  # type: ignore[arg-type]
        observed = grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[rpc] = (handler, observed)
        return observed

    def _wrap(self, rpc: str, behavior: Behavior) -> Behavior:
        metrics = self._metrics

        async def observed(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            observer = bind(metrics)
            held = audit.hold_for_rpc()
            try:
                response = await behavior(request, context)
                code = context.code() or grpc.StatusCode.OK
                return response
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                held.close()
                unbind(observer)
                elapsed = time.perf_counter() - started
                metrics.observe_rpc(rpc, code.name, elapsed)
                _log_rpc(rpc, code, elapsed, context, held)

        return observed


def _log_rpc(rpc: str, code: grpc.StatusCode, seconds: float, context: Context, held: audit.RpcAudit) -> None:
    level = held.level
    if not access_log.isEnabledFor(level):
        return
    fields: dict[str, object] = {
        "request_id": request_id(context.invocation_metadata()),
        "rpc": rpc,
        "status": code.name,
        "duration_ms": round(seconds * 1000, 3),
        "peer": context.peer(),
    }
    if held.fields is not None:
        fields.update(held.fields)
    access_log.log(level, "rpc", extra=fields)
