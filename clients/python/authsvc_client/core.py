"""What `AuthClient` and `AsyncAuthClient` share: the constructor, the deadline, the bearer, and how a row
of rpcs.py becomes a call of the generated stub. The two clients add only their channel, closing, and
whether the answer is awaited.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from authsvc_proto.v1 import auth_pb2_grpc

from authsvc_client.channels import ChannelSpec, RetryPolicy, Tls
from authsvc_client.rpcs import Bearer, Prepared

DEFAULT_TIMEOUT = 5.0

InterceptorT = TypeVar("InterceptorT")
ChannelT = TypeVar("ChannelT")

Metadata = tuple[tuple[str, str], ...]


def bearer_metadata(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


class ClientCore(ABC, Generic[InterceptorT, ChannelT]):
    """The constructor and the making of a call, for both clients: a subclass opens its kind of channel
    (`_connect`) and sends each row with `_start`, mapping errors and awaiting the answer as its kind
    needs."""

    def __init__(
        self,
        target: str,
        *,
        tls: Tls | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        introspection_secret: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[InterceptorT] | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._introspection_secret = introspection_secret
        spec = ChannelSpec(target, retry or RetryPolicy(), tls, options)
        self._channel = self._connect(spec, interceptors or ())
        # One stub type for both channel kinds; its methods are looked up by the table's names.
        self._stub: Any = auth_pb2_grpc.AuthServiceStub(self._channel)  # type: ignore[call-overload]

    @abstractmethod
    def _connect(self, spec: ChannelSpec, interceptors: Sequence[InterceptorT]) -> ChannelT: ...

    def _start(self, prepared: Prepared[Any], token: str | None, timeout: float | None) -> Any:
        """Make the call: the answer from a blocking stub, the call to await from a grpc.aio one."""
        method = getattr(self._stub, prepared.rpc.name)
        return method(
            prepared.request,
            metadata=self._metadata(prepared.rpc.bearer, token),
            timeout=self.timeout if timeout is None else timeout,
        )

    def _metadata(self, kind: Bearer, token: str | None) -> Metadata | None:
        if kind is Bearer.ACCESS_TOKEN:
            assert token is not None  # a required argument of the client method
            return bearer_metadata(token)
        if kind is Bearer.INTROSPECTION_SECRET:
            secret = self._introspection_secret if token is None else token
            return bearer_metadata(secret) if secret else None
        return None
