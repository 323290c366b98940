"""`AuthClient`: every AuthService RPC as a blocking method with plain arguments and results."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import grpc
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc_client import models
from authsvc_client.aio import DEFAULT_TIMEOUT, bearer
from authsvc_client.channels import RetryPolicy, Tls, sync_channel
from authsvc_client.errors import mapped_errors


class AuthClient:
    """A client of one authsvc target over one blocking grpc channel (thread-safe).

    Every call has a deadline (`timeout` seconds, per client, overridable per call), which bounds all
    its attempts, and raises an `AuthServiceError` subclass on failure. UNAVAILABLE is retried by the
    channel per `retry`. Use it as
    `with AuthClient(...) as client:` or call `close()`.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: Tls | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        introspection_secret: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
        interceptors: Sequence[grpc.UnaryUnaryClientInterceptor[Any, Any]] = (),
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._introspection_secret = introspection_secret
        self._channel = sync_channel(target, retry or RetryPolicy(), tls, options)
        if interceptors:
            self._channel = grpc.intercept_channel(self._channel, *interceptors)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def register(self, email: str, password: str, *, timeout: float | None = None) -> models.Account:
        """Create an account. Raises AlreadyExists (EMAIL_TAKEN), InvalidArgument (INVALID_EMAIL...)."""
        request = auth_pb2.RegisterRequest(email=email, password=password)
        with mapped_errors():
            answer = self._stub.Register(request, timeout=self._deadline(timeout))
        return models.Account(user_id=answer.user_id, email=answer.email)

    def login(self, email: str, password: str, *, timeout: float | None = None) -> models.TokenPair:
        """Open a session. Raises InvalidCredentials, Throttled (with `retry_after`)."""
        request = auth_pb2.LoginRequest(email=email, password=password)
        with mapped_errors():
            answer = self._stub.Login(request, timeout=self._deadline(timeout))
        return models.token_pair(answer)

    def refresh(self, refresh_token: str, *, timeout: float | None = None) -> models.TokenPair:
        """Spend `refresh_token` for a new pair of the same session. Raises InvalidToken."""
        request = auth_pb2.RefreshRequest(refresh_token=refresh_token)
        with mapped_errors():
            answer = self._stub.Refresh(request, timeout=self._deadline(timeout))
        return models.token_pair(answer)

    def logout(self, refresh_token: str, *, timeout: float | None = None) -> None:
        """Revoke the session of `refresh_token`. Raises InvalidToken."""
        request = auth_pb2.LogoutRequest(refresh_token=refresh_token)
        with mapped_errors():
            self._stub.Logout(request, timeout=self._deadline(timeout))

    def logout_all(self, access_token: str, *, timeout: float | None = None) -> int:
        """Revoke every live session of the token's user; return how many were revoked."""
        with mapped_errors():
            answer = self._stub.LogoutAll(
                auth_pb2.LogoutAllRequest(), metadata=bearer(access_token), timeout=self._deadline(timeout)
            )
        return answer.revoked_sessions

    def list_sessions(self, access_token: str, *, timeout: float | None = None) -> list[models.Session]:
        """The live sessions of the token's user, newest first."""
        with mapped_errors():
            answer = self._stub.ListSessions(
                auth_pb2.ListSessionsRequest(), metadata=bearer(access_token), timeout=self._deadline(timeout)
            )
        return [models.session(item) for item in answer.sessions]

    def revoke_session(self, access_token: str, session_id: str, *, timeout: float | None = None) -> None:
        """Revoke one of the caller's own live sessions. Raises NotFound (SESSION_NOT_FOUND) otherwise."""
        request = auth_pb2.RevokeSessionRequest(session_id=session_id)
        with mapped_errors():
            self._stub.RevokeSession(request, metadata=bearer(access_token), timeout=self._deadline(timeout))

    def introspect(
        self, token: str, *, secret: str | None = None, timeout: float | None = None
    ) -> models.Introspection:
        """RFC 7662 introspection; `secret` (default: the client's `introspection_secret`) is the bearer."""
        secret = secret if secret is not None else self._introspection_secret
        with mapped_errors():
            answer = self._stub.Introspect(
                auth_pb2.IntrospectRequest(token=token),
                metadata=bearer(secret) if secret else None,
                timeout=self._deadline(timeout),
            )
        return models.introspection(answer)

    def get_jwks(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The service's public keys as an RFC 7517 JWK Set (a dict, as `jwt.PyJWKSet.from_dict` takes)."""
        with mapped_errors():
            answer = self._stub.GetJwks(auth_pb2.GetJwksRequest(), timeout=self._deadline(timeout))
        return models.jwks(answer)
