"""`AsyncAuthClient`: every AuthService RPC as an asyncio method with plain arguments and results.

Each method is one row of rpcs.py sent through the shared `ClientCore`, its answer awaited; `AuthClient`
(client.py) is the same over a blocking channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import grpc

from authsvc_client import models, rpcs
from authsvc_client.channels import ChannelSpec
from authsvc_client.core import ClientCore
from authsvc_client.errors import mapped_errors

R = TypeVar("R")

if TYPE_CHECKING:
    Interceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:  # not subscriptable at run time
    Interceptor = grpc.aio.UnaryUnaryClientInterceptor


class AsyncAuthClient(ClientCore[Interceptor, grpc.aio.Channel]):
    """A client of one authsvc target over one grpc.aio channel; deadlines, errors and retries as
    `AuthClient`'s. Use it as `async with AsyncAuthClient(...) as client:` or call `close()`.
    """

    def _connect(self, spec: ChannelSpec, interceptors: Sequence[Interceptor]) -> grpc.aio.Channel:
        return spec.aio(interceptors)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(None)

    async def _send(
        self, prepared: rpcs.Prepared[R], *, bearer: str | None = None, timeout: float | None
    ) -> R:
        with mapped_errors():
            answer = await self._start(prepared, bearer, timeout)
        return prepared.rpc.result(answer)

    async def register(self, email: str, password: str, *, timeout: float | None = None) -> models.Account:
        """Create an account. Raises AlreadyExists (EMAIL_TAKEN), InvalidArgument (INVALID_EMAIL...)."""
        return await self._send(rpcs.REGISTER.prepare(email=email, password=password), timeout=timeout)

    async def login(self, email: str, password: str, *, timeout: float | None = None) -> models.TokenPair:
        """Open a session. Raises InvalidCredentials, Throttled (with `retry_after`)."""
        return await self._send(rpcs.LOGIN.prepare(email=email, password=password), timeout=timeout)

    async def refresh(self, refresh_token: str, *, timeout: float | None = None) -> models.TokenPair:
        """Spend `refresh_token` for a new pair of the same session. Raises InvalidToken."""
        return await self._send(rpcs.REFRESH.prepare(refresh_token=refresh_token), timeout=timeout)

    async def logout(self, refresh_token: str, *, timeout: float | None = None) -> None:
        """Revoke the session of `refresh_token`. Raises InvalidToken."""
        return await self._send(rpcs.LOGOUT.prepare(refresh_token=refresh_token), timeout=timeout)

    async def logout_all(self, access_token: str, *, timeout: float | None = None) -> int:
        """Revoke every live session of the token's user; return how many were revoked."""
        return await self._send(rpcs.LOGOUT_ALL.prepare(), bearer=access_token, timeout=timeout)

    async def list_sessions(self, access_token: str, *, timeout: float | None = None) -> list[models.Session]:
        """The live sessions of the token's user, newest first."""
        return await self._send(rpcs.LIST_SESSIONS.prepare(), bearer=access_token, timeout=timeout)

    async def revoke_session(
        self, access_token: str, session_id: str, *, timeout: float | None = None
    ) -> None:
        """Revoke one of the caller's own live sessions. Raises NotFound (SESSION_NOT_FOUND) otherwise."""
        prepared = rpcs.REVOKE_SESSION.prepare(session_id=session_id)
        return await self._send(prepared, bearer=access_token, timeout=timeout)

    async def introspect(
        self, token: str, *, secret: str | None = None, timeout: float | None = None
    ) -> models.Introspection:
        """RFC 7662 introspection; `secret` (default: the client's `introspection_secret`) is the bearer."""
        return await self._send(rpcs.INTROSPECT.prepare(token=token), bearer=secret, timeout=timeout)

    async def get_jwks(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The service's public keys as an RFC 7517 JWK Set (a dict, as `jwt.PyJWKSet.from_dict` takes)."""
        return await self._send(rpcs.GET_JWKS.prepare(), timeout=timeout)

    async def get_profile(self, access_token: str, *, timeout: float | None = None) -> models.Profile:
        """The caller's profile."""
        return await self._send(rpcs.GET_PROFILE.prepare(), bearer=access_token, timeout=timeout)

    async def update_profile(
        self, access_token: str, display_name: str, *, timeout: float | None = None
    ) -> models.Profile:
        """Set the caller's display name ("" clears it); answers the profile. Raises InvalidArgument
        (DISPLAY_NAME_INVALID) for over 100 characters or control characters."""
        prepared = rpcs.UPDATE_PROFILE.prepare(display_name=display_name)
        return await self._send(prepared, bearer=access_token, timeout=timeout)

    async def change_password(
        self, access_token: str, current_password: str, new_password: str, *, timeout: float | None = None
    ) -> int:
        """Change the caller's password; every other session is revoked (the caller's stays): return how
        many. Raises InvalidCredentials for a wrong current password, InvalidArgument (WEAK_PASSWORD...)."""
        prepared = rpcs.CHANGE_PASSWORD.prepare(current_password=current_password, new_password=new_password)
        return await self._send(prepared, bearer=access_token, timeout=timeout)

    async def forgot_password(self, email: str, *, timeout: float | None = None) -> None:
        """Ask for a reset mail; answers the same whether or not an account has this email."""
        return await self._send(rpcs.FORGOT_PASSWORD.prepare(email=email), timeout=timeout)

    async def reset_password(self, token: str, new_password: str, *, timeout: float | None = None) -> int:
        """Set a new password with the token of a reset mail; every session of the account is revoked:
        return how many. Raises InvalidArgument (RESET_TOKEN_INVALID, WEAK_PASSWORD...)."""
        prepared = rpcs.RESET_PASSWORD.prepare(token=token, new_password=new_password)
        return await self._send(prepared, timeout=timeout)

    async def request_email_verification(self, access_token: str, *, timeout: float | None = None) -> None:
        """Mail the caller a verification link (nothing is sent when the email is already verified)."""
        return await self._send(
            rpcs.REQUEST_EMAIL_VERIFICATION.prepare(), bearer=access_token, timeout=timeout
        )

    async def verify_email(self, token: str, *, timeout: float | None = None) -> None:
        """Mark an email verified with the token of a verification mail. Raises InvalidArgument
        (VERIFICATION_TOKEN_INVALID)."""
        return await self._send(rpcs.VERIFY_EMAIL.prepare(token=token), timeout=timeout)

    async def delete_account(self, access_token: str, password: str, *, timeout: float | None = None) -> None:
        """Delete the caller's account after checking the password. Raises InvalidCredentials."""
        prepared = rpcs.DELETE_ACCOUNT.prepare(password=password)
        return await self._send(prepared, bearer=access_token, timeout=timeout)

    async def set_user_disabled(
        self, access_token: str, email: str, disabled: bool, *, timeout: float | None = None
    ) -> models.UserStatus:
        """Disable (or enable) the account of `email`, as an admin. Raises PermissionDenied (ADMIN_ONLY)
        for a caller who is not one, NotFound (USER_NOT_FOUND)."""
        prepared = rpcs.SET_USER_DISABLED.prepare(email=email, disabled=disabled)
        return await self._send(prepared, bearer=access_token, timeout=timeout)
