"""The AuthService servicer: proto messages in, domain calls, proto messages out. No business rules.

Domain errors propagate: decoding.py's handlers turn them into statuses, in one place for every RPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from google.protobuf import timestamp_pb2

from authsvc.domain import errors
from authsvc.domain.account import AccountService, Profile
from authsvc.domain.admin import AdminService
from authsvc.domain.audit import ClientInfo
from authsvc.domain.keys import PublicJwk
from authsvc.domain.recovery import RecoveryService
from authsvc.domain.service import AuthService, Caller, IssuedTokens
from authsvc.domain.sessions import SessionService, SessionSummary
from authsvc.transport.client_info import Network, bearer_token, client_info
from authsvc.transport.errors import Context
from authsvc.transport.gateway_trust import GatewayTrust

T = TypeVar("T")
# What a server bound without the account or the recovery service answers UNIMPLEMENTED for.
_ACCOUNT_RPCS = "the account RPCs"
_RECOVERY_RPCS = "the password reset and email verification RPCs"

LOGGED_OUT = "Logged out successfully"
LOGGED_OUT_EVERYWHERE = "Logged out from all devices successfully"
SESSION_REVOKED = "Session revoked"
PASSWORD_CHANGED = "Password changed successfully"  # noqa: S105 (a message, not a secret)
ACCOUNT_DELETED = "Account deleted"
# Password reset and email verification (docs/api.md): the same answer whether or not an account exists.
RESET_REQUESTED = "If an account exists for this email, a reset link has been sent"
PASSWORD_RESET = "Password has been reset"  # noqa: S105 (a message, not a secret)
VERIFICATION_REQUESTED = "If your email is not verified yet, a verification link has been sent"
EMAIL_VERIFIED = "Email verified"
BEARER_TOKEN_TYPE = "Bearer"  # noqa: S105 (RFC 7662 token_type, as RFC 6749 section 5.1 names it)


def _token_pair(issued: IssuedTokens) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        refresh_expires_in=issued.refresh_expires_in,
        session_id=issued.session_id,
    )


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _session_info(summary: SessionSummary) -> auth_pb2.SessionInfo:
    # Unknown user agent or address stay unset, so JSON omits them rather than showing "".
    return auth_pb2.SessionInfo(
        session_id=summary.session_id,
        created_at=_timestamp(summary.created_at),
        last_used_at=_timestamp(summary.last_used_at),
        expires_at=_timestamp(summary.expires_at),
        user_agent=summary.user_agent,
        ip_address=summary.ip_address,
        current=summary.current,
    )


def _profile(profile: Profile) -> auth_pb2.Profile:
    return auth_pb2.Profile(
        user_id=profile.user_id,
        email=profile.email,
        email_verified=profile.email_verified,
        display_name=profile.display_name,
        role=profile.role,
        created_at=_timestamp(profile.created_at),
    )


def _json_web_key(key: PublicJwk) -> auth_pb2.JsonWebKey:
    return auth_pb2.JsonWebKey(kty=key.kty, crv=key.crv, x=key.x, kid=key.kid, alg=key.alg, use=key.use)


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        service: AuthService,
        sessions: SessionService,
        trusted_proxies: Sequence[Network],
        jwks_max_age_seconds: int = 0,
        gateway: GatewayTrust | None = None,
        *,
        account: AccountService | None = None,
        admin: AdminService | None = None,
        recovery: RecoveryService | None = None,
    ) -> None:
        self._recovery = recovery
        self._service = service
        self._sessions = sessions
        self._account = account
        self._admin = admin
        self._trusted_proxies = tuple(trusted_proxies)
        self._gateway = gateway or GatewayTrust(None)
        # Sent as metadata with every key set; the gateway turns it into the HTTP Cache-Control.
        self._jwks_cache_control = (("cache-control", f"public, max-age={jwks_max_age_seconds}"),)

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: Context
    ) -> auth_pb2.RegisterResponse:
        registered = await self._service.register(request.email, request.password, self._client(context))
        return auth_pb2.RegisterResponse(user_id=registered.user_id, email=registered.email)

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.TokenPair:
        client = self._client(context)
        return _token_pair(await self._service.login(request.email, request.password, client))

    async def Refresh(self, request: auth_pb2.RefreshRequest, context: Context) -> auth_pb2.TokenPair:
        return _token_pair(await self._service.refresh(request.refresh_token, self._client(context)))

    async def Logout(self, request: auth_pb2.LogoutRequest, context: Context) -> auth_pb2.LogoutResponse:
        await self._service.logout(request.refresh_token, self._client(context))
        return auth_pb2.LogoutResponse(message=LOGGED_OUT)

    async def LogoutAll(
        self, request: auth_pb2.LogoutAllRequest, context: Context
    ) -> auth_pb2.LogoutAllResponse:
        caller = await self._authenticate(context)
        count = await self._service.logout_all(caller, self._client(context))
        return auth_pb2.LogoutAllResponse(message=LOGGED_OUT_EVERYWHERE, revoked_sessions=count)

    async def ListSessions(
        self, request: auth_pb2.ListSessionsRequest, context: Context
    ) -> auth_pb2.ListSessionsResponse:
        caller = await self._authenticate(context)
        found = await self._sessions.list_sessions(caller)
        return auth_pb2.ListSessionsResponse(sessions=[_session_info(summary) for summary in found])

    async def RevokeSession(
        self, request: auth_pb2.RevokeSessionRequest, context: Context
    ) -> auth_pb2.RevokeSessionResponse:
        caller = await self._authenticate(context)
        await self._sessions.revoke_session(caller, request.session_id, self._client(context))
        return auth_pb2.RevokeSessionResponse(message=SESSION_REVOKED)

    async def Introspect(
        self, request: auth_pb2.IntrospectRequest, context: Context
    ) -> auth_pb2.IntrospectResponse:
        metadata = context.invocation_metadata()
        active = await self._sessions.introspect(request.token, bearer_token(metadata), self._client(context))
        if active is None:
            return auth_pb2.IntrospectResponse(active=False)
        return auth_pb2.IntrospectResponse(
            active=True,
            token_type=BEARER_TOKEN_TYPE,
            sub=active.user_id,
            sid=active.session_id,
            exp=active.expires_at,
            email=active.email,
            role=active.role,
            email_verified=active.email_verified,
        )

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Context) -> auth_pb2.JsonWebKeySet:
        await context.send_initial_metadata(self._jwks_cache_control)
        return auth_pb2.JsonWebKeySet(keys=[_json_web_key(key) for key in self._sessions.published_keys()])

    # -- the caller's own account, and the admin RPC ----------------------------------------------------

    async def GetProfile(self, request: auth_pb2.GetProfileRequest, context: Context) -> auth_pb2.Profile:
        account = _required(self._account, _ACCOUNT_RPCS)
        caller = await self._authenticate(context)
        return _profile(await account.profile(caller))

    async def UpdateProfile(
        self, request: auth_pb2.UpdateProfileRequest, context: Context
    ) -> auth_pb2.Profile:
        account = _required(self._account, _ACCOUNT_RPCS)
        caller = await self._authenticate(context)
        client = self._client(context)
        return _profile(await account.update_profile(caller, request.display_name, client))

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> auth_pb2.ChangePasswordResponse:
        account = _required(self._account, _ACCOUNT_RPCS)
        caller = await self._authenticate(context)
        revoked = await account.change_password(
            caller, request.current_password, request.new_password, self._client(context)
        )
        return auth_pb2.ChangePasswordResponse(message=PASSWORD_CHANGED, revoked_sessions=revoked)

    async def DeleteAccount(
        self, request: auth_pb2.DeleteAccountRequest, context: Context
    ) -> auth_pb2.DeleteAccountResponse:
        account = _required(self._account, _ACCOUNT_RPCS)
        caller = await self._authenticate(context)
        await account.delete_account(caller, request.password, self._client(context))
        return auth_pb2.DeleteAccountResponse(message=ACCOUNT_DELETED)

    async def SetUserDisabled(
        self, request: auth_pb2.SetUserDisabledRequest, context: Context
    ) -> auth_pb2.SetUserDisabledResponse:
        admin = _required(self._admin, "SetUserDisabled")
        caller = await self._authenticate(context)
        outcome = await admin.set_disabled_by(caller, request.email, request.disabled, self._client(context))
        profile = outcome.account.profile
        return auth_pb2.SetUserDisabledResponse(
            user_id=profile.user_id,
            email=profile.email,
            disabled=outcome.account.disabled_at is not None,
            revoked_sessions=outcome.revoked_sessions,
        )

    # -- password reset and email verification ---------------------------------------------------------

    async def ForgotPassword(
        self, request: auth_pb2.ForgotPasswordRequest, context: Context
    ) -> auth_pb2.ForgotPasswordResponse:
        await _required(self._recovery, _RECOVERY_RPCS).forgot_password(request.email, self._client(context))
        return auth_pb2.ForgotPasswordResponse(message=RESET_REQUESTED)

    async def ResetPassword(
        self, request: auth_pb2.ResetPasswordRequest, context: Context
    ) -> auth_pb2.ResetPasswordResponse:
        revoked = await _required(
            self._recovery, "the password reset and email verification RPCs"
        ).reset_password(request.token, request.new_password, self._client(context))
        return auth_pb2.ResetPasswordResponse(message=PASSWORD_RESET, revoked_sessions=revoked)

    async def RequestEmailVerification(
        self, request: auth_pb2.RequestEmailVerificationRequest, context: Context
    ) -> auth_pb2.RequestEmailVerificationResponse:
        recovery = _required(self._recovery, _RECOVERY_RPCS)
        caller = await self._authenticate(context)
        await recovery.request_email_verification(caller, self._client(context))
        return auth_pb2.RequestEmailVerificationResponse(message=VERIFICATION_REQUESTED)

    async def VerifyEmail(
        self, request: auth_pb2.VerifyEmailRequest, context: Context
    ) -> auth_pb2.VerifyEmailResponse:
        await _required(self._recovery, _RECOVERY_RPCS).verify_email(request.token, self._client(context))
        return auth_pb2.VerifyEmailResponse(message=EMAIL_VERIFIED)

    def _client(self, context: Context) -> ClientInfo:
        metadata = context.invocation_metadata()
        from_gateway = self._gateway.is_gateway(metadata, context)
        return client_info(metadata, context.peer(), self._trusted_proxies, from_gateway=from_gateway)

    async def _authenticate(self, context: Context) -> Caller:
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise errors.NotAuthenticated()
        if not token:
            raise errors.TokenInvalid("Authorization must be `Bearer <access token>`")
        return await self._sessions.authenticate(token)


def _required(service: T | None, rpcs: str) -> T:
    """The service behind some RPCs; a server bound without it answers them UNIMPLEMENTED."""
    if service is None:
        raise NotImplementedError(rpcs)
    return service
