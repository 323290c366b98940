"""authsvc-client: a typed client, a token keeper and a bearer guard for the authsvc gRPC API.

Installable without the server: it depends on the contract package (`authsvc-proto`) only.
"""

from authsvc_client.aio import AsyncAuthClient
from authsvc_client.channels import NO_RETRIES, RetryPolicy, Tls
from authsvc_client.client import AuthClient
from authsvc_client.errors import (
    AlreadyExists,
    AuthServiceError,
    DeadlineExceeded,
    InvalidArgument,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from authsvc_client.guard import BearerGuard, BlockingBearerGuard
from authsvc_client.interceptor import GuardInterceptor, current_user
from authsvc_client.keeper import AsyncTokenKeeper, SessionEnded, TokenKeeper
from authsvc_client.models import Account, Introspection, Profile, Session, TokenPair, UserStatus
from authsvc_client.verification import GuardError, User

__all__ = [
    "NO_RETRIES",
    "Account",
    "AlreadyExists",
    "AsyncAuthClient",
    "AsyncTokenKeeper",
    "AuthClient",
    "AuthServiceError",
    "BearerGuard",
    "BlockingBearerGuard",
    "DeadlineExceeded",
    "GuardError",
    "GuardInterceptor",
    "Introspection",
    "InvalidArgument",
    "InvalidCredentials",
    "InvalidToken",
    "NotFound",
    "PermissionDenied",
    "Profile",
    "RetryPolicy",
    "Session",
    "SessionEnded",
    "Throttled",
    "Tls",
    "TokenKeeper",
    "TokenPair",
    "Unauthenticated",
    "Unavailable",
    "User",
    "UserStatus",
    "current_user",
]
