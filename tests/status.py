"""Reading the reason word and retry delay out of a failed call's rich status."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    return None


async def expect_error(call: Awaitable[Any], code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    """Await `call`, which must fail with `code` and the ErrorInfo reason `reason`."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        info = error_info(error)
        assert (error.code(), info.reason if info else None) == (code, reason), error.details()
        assert info is not None and info.domain == "authsvc"
        return error
    raise AssertionError(f"expected {code.name} {reason}, but the call succeeded")
