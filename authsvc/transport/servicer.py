"""The AuthService servicer: proto messages in, domain calls, proto messages out. No business rules."""

from __future__ import annotations

from collections.abc import Sequence

from authsvc.domain import errors
from authsvc.domain.service import AuthService, Caller, IssuedTokens
from authsvc.transport.client_info import Network, bearer_token, client_info
from authsvc.transport.errors import Context, maps_errors
from authsvc.v1 import auth_pb2, auth_pb2_grpc

LOGGED_OUT = "Logged out successfully"
LOGGED_OUT_EVERYWHERE = "Logged out from all devices successfully"


def _token_pair(issued: IssuedTokens) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        refresh_expires_in=issued.refresh_expires_in,
        session_id=issued.session_id,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: AuthService, trusted_proxies: Sequence[Network]) -> None:
        self._service = service
        self._trusted_proxies = tuple(trusted_proxies)

    @maps_errors
    async def Register(
        self, request: auth_pb2.RegisterRequest, context: Context
    ) -> auth_pb2.RegisterResponse:
        registered = await self._service.register(request.email, request.password)
        return auth_pb2.RegisterResponse(user_id=registered.user_id, email=registered.email)

    @maps_errors
    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.TokenPair:
        client = client_info(context.invocation_metadata(), context.peer(), self._trusted_proxies)
        return _token_pair(await self._service.login(request.email, request.password, client))

    @maps_errors
    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> auth_pb2.TokenPair:
        return _token_pair(await self._service.refresh(request.refresh_token))

    @maps_errors
    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:
        await self._service.logout(request.refresh_token)
        return auth_pb2.LogoutResponse(message=LOGGED_OUT)

    @maps_errors
    async def LogoutAll(
        self, request: auth_pb2.LogoutAllRequest, context: Context
    ) -> auth_pb2.LogoutAllResponse:
        caller = await self._authenticate(context)
        count = await self._service.logout_all(caller)
        return auth_pb2.LogoutAllResponse(message=LOGGED_OUT_EVERYWHERE, revoked_sessions=count)

    async def _authenticate(self, context: Context) -> Caller:
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise errors.NotAuthenticated()
        if not token:
            raise errors.TokenInvalid("Authorization must be `Bearer <access token>`")
        return await self._service.authenticate(token)
