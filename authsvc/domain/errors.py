"""Domain errors: one base class, each named for what happened and carrying its stable reason word.

Clients branch on `reason` (sent as google.rpc.ErrorInfo), never on the message text.
"""

from __future__ import annotations

from typing import ClassVar


class AuthError(Exception):
    """Base of every error the domain reports to callers."""

    reason: ClassVar[str] = "ERROR"
    default_message: ClassVar[str] = "Request failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


# -- the request itself is wrong (INVALID_ARGUMENT) ---------------------------------------------------
class InvalidRequest(AuthError):
    reason = "INVALID_REQUEST"
    default_message = "Request is malformed"


class InvalidEmail(InvalidRequest):
    reason = "INVALID_EMAIL"
    default_message = "Email address is not valid"


class WeakPassword(InvalidRequest):
    reason = "WEAK_PASSWORD"
    default_message = "Password must be at least 8 characters"


class PasswordTooLong(InvalidRequest):
    reason = "PASSWORD_TOO_LONG"
    default_message = "Password must be at most 72 bytes in UTF-8"


class TokenTooLong(InvalidRequest):
    reason = "TOKEN_TOO_LONG"
    default_message = "Token is longer than any token this service issues"


# -- the caller is not who they claim (UNAUTHENTICATED) -----------------------------------------------
class NotAuthenticated(AuthError):
    reason = "NOT_AUTHENTICATED"
    default_message = "Not authenticated"


class InvalidCredentials(NotAuthenticated):
    reason = "INVALID_CREDENTIALS"
    default_message = "Incorrect email or password"


class TokenInvalid(NotAuthenticated):
    reason = "TOKEN_INVALID"
    default_message = "Token is invalid"


class TokenExpired(NotAuthenticated):
    reason = "TOKEN_EXPIRED"
    default_message = "Token has expired"


class SessionRevoked(NotAuthenticated):
    reason = "SESSION_REVOKED"
    default_message = "Session has been revoked"


class RefreshTokenReused(NotAuthenticated):
    reason = "REFRESH_TOKEN_REUSED"
    default_message = "Refresh token was already used; the session has been revoked"


# -- the caller may not use this RPC at all (PERMISSION_DENIED) ----------------------------------------
class PermissionDenied(AuthError):
    reason = "PERMISSION_DENIED"
    default_message = "Permission denied"


class IntrospectionLoopbackOnly(PermissionDenied):
    reason = "INTROSPECTION_LOOPBACK_ONLY"
    default_message = "Introspection answers only loopback callers: no introspection secret is configured"


# -- other outcomes -----------------------------------------------------------------------------------
class EmailTaken(AuthError):
    reason = "EMAIL_TAKEN"
    default_message = "Email is already registered"


class SessionNotFound(AuthError):
    reason = "SESSION_NOT_FOUND"
    default_message = "Session not found"


class Throttled(AuthError):
    reason = "THROTTLED"
    default_message = "Too many attempts; try again later"

    def __init__(self, retry_after_seconds: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(AuthError):
    reason = "STORE_UNAVAILABLE"
    default_message = "Service is temporarily unavailable; try again"


# -- the account lifecycle: profile and operators ------------------------------------------------------
class DisplayNameInvalid(InvalidRequest):
    reason = "DISPLAY_NAME_INVALID"
    default_message = "Display name must be at most 100 characters, without control characters"


class AccountDisabled(PermissionDenied):
    reason = "ACCOUNT_DISABLED"
    default_message = "This account has been disabled"


class AdminOnly(PermissionDenied):
    reason = "ADMIN_ONLY"
    default_message = "Only an admin may do this"


class UserNotFound(AuthError):
    reason = "USER_NOT_FOUND"
    default_message = "No account has this email"


# -- password reset and email verification (authsvc/domain/recovery.py) ----------------------------------
class ResetTokenInvalid(InvalidRequest):
    reason = "RESET_TOKEN_INVALID"
    default_message = "This reset link is invalid, used, replaced by a newer one, or expired"


class VerificationTokenInvalid(InvalidRequest):
    reason = "VERIFICATION_TOKEN_INVALID"
    default_message = "This verification link is invalid, used, or expired"
