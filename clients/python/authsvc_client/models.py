"""The results of the client's calls: frozen dataclasses built from the protobuf answers.

Protobuf messages stay inside the client; callers see only these plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from authsvc_proto.v1 import auth_pb2
from google.protobuf import timestamp_pb2


@dataclass(frozen=True)
class Account:
    """A registered user: the id and the normalised (trimmed, lower-cased) email."""

    user_id: str
    email: str


@dataclass(frozen=True)
class TokenPair:
    """The answer of Login and Refresh. Lifetimes are seconds from when the service answered."""

    access_token: str
    refresh_token: str
    session_id: str
    expires_in: int
    refresh_expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)

    def __repr__(self) -> str:
        # Tokens are bearer credentials: never in logs or tracebacks.
        return f"TokenPair(session_id={self.session_id!r}, expires_in={self.expires_in}, ...)"


@dataclass(frozen=True)
class Session:
    """One live login of the caller; `current` marks the session of the token that asked."""

    session_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    current: bool


@dataclass(frozen=True)
class Introspection:
    """RFC 7662: `active` only for a live access token; every other member is None when inactive."""

    active: bool
    token_type: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    expires_at: int | None = None
    email: str | None = None
    role: str | None = None
    email_verified: bool | None = None


@dataclass(frozen=True)
class Profile:
    """The caller's profile: `display_name` is "" when unset; `role` is "user" or "admin"."""

    user_id: str
    email: str
    email_verified: bool
    display_name: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class UserStatus:
    """The answer of SetUserDisabled: the account, whether it is now disabled, and how many sessions
    disabling it revoked (0 when enabling)."""

    user_id: str
    email: str
    disabled: bool
    revoked_sessions: int


def _time(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def account(message: auth_pb2.RegisterResponse) -> Account:
    return Account(user_id=message.user_id, email=message.email)


def token_pair(message: auth_pb2.TokenPair) -> TokenPair:
    return TokenPair(
        access_token=message.access_token,
        refresh_token=message.refresh_token,
        session_id=message.session_id,
        expires_in=message.expires_in,
        refresh_expires_in=message.refresh_expires_in,
        token_type=message.token_type,
    )


def session(message: auth_pb2.SessionInfo) -> Session:
    return Session(
        session_id=message.session_id,
        created_at=_time(message.created_at),
        last_used_at=_time(message.last_used_at),
        expires_at=_time(message.expires_at),
        user_agent=message.user_agent if message.HasField("user_agent") else None,
        ip_address=message.ip_address if message.HasField("ip_address") else None,
        current=message.current,
    )


def sessions(message: auth_pb2.ListSessionsResponse) -> list[Session]:
    return [session(item) for item in message.sessions]


def introspection(message: auth_pb2.IntrospectResponse) -> Introspection:
    if not message.active:
        return Introspection(active=False)
    return Introspection(
        active=True,
        token_type=message.token_type if message.HasField("token_type") else None,
        user_id=message.sub if message.HasField("sub") else None,
        session_id=message.sid if message.HasField("sid") else None,
        expires_at=message.exp if message.HasField("exp") else None,
        email=message.email if message.HasField("email") else None,
        role=message.role if message.HasField("role") else None,
        email_verified=message.email_verified if message.HasField("email_verified") else None,
    )


def profile(message: auth_pb2.Profile) -> Profile:
    return Profile(
        user_id=message.user_id,
        email=message.email,
        email_verified=message.email_verified,
        display_name=message.display_name,
        role=message.role,
        created_at=_time(message.created_at),
    )


def user_status(message: auth_pb2.SetUserDisabledResponse) -> UserStatus:
    return UserStatus(
        user_id=message.user_id,
        email=message.email,
        disabled=message.disabled,
        revoked_sessions=message.revoked_sessions,
    )


def jwks(message: auth_pb2.JsonWebKeySet) -> dict[str, Any]:
    """The RFC 7517 JSON form (what `jwt.PyJWKSet.from_dict` takes), members that are unset left out."""
    names: tuple[Literal["kty", "crv", "x", "kid", "alg", "use"], ...] = (
        "kty",
        "crv",
        "x",
        "kid",
        "alg",
        "use",
    )
    return {
        "keys": [{name: getattr(key, name) for name in names if key.HasField(name)} for key in message.keys]
    }
