"""The checks of a bearer access token that both guards share: the `authorization` entry, the JWS header
(`alg` EdDSA, `typ` at+jwt as RFC 9068 asks, a `kid`), the one canonical spelling of each part, the claims
against the key (pyjwt), the expiry against an injected clock, the key-cache policy (when to fetch the
key set, what a failed fetch keeps), and what an Introspect answer or failure means.
Nothing here locks or calls the service; guard.py does both, the same way for either guard.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt

from authsvc_client.errors import AuthServiceError
from authsvc_client.models import Introspection

ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")  # RFC 9068 section 4, compared case-insensitively
MAX_TOKEN_LENGTH = 4096  # the service issues nothing longer
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def is_canonical(token: str) -> bool:
    """Whether every part of a compact JWS is in its one base64url spelling (RFC 4648 section 3.5: the
    unused low bits of the last character are zero), so that a token has exactly one string form."""
    if _COMPACT.fullmatch(token) is None:
        return False
    for part in token.split("."):
        if len(part) % 4 == 1:
            return False
        try:
            decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            return False
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != part:
            return False
    return True


@dataclass(frozen=True)
class User:
    """Who made the call, from the verified access token's claims."""

    user_id: str
    session_id: str
    email: str | None
    role: str | None
    expires_at: int  # the token's `exp`, seconds since the epoch


class GuardError(Exception):
    """The bearer was refused (UNAUTHENTICATED with `reason`) or could not be checked (UNAVAILABLE)."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


def refused(reason: str, message: str) -> GuardError:
    return GuardError(grpc.StatusCode.UNAUTHENTICATED, reason, message)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token of the one `authorization: Bearer <token>` entry; raise GuardError otherwise."""
    values = [value for key, value in metadata if key == "authorization"]
    if not values:
        raise refused("NOT_AUTHENTICATED", "Not authenticated")
    if len(values) > 1 or not isinstance(values[0], str):
        raise refused("TOKEN_INVALID", "Expected exactly one authorization entry")
    scheme, _, token = values[0].strip().partition(" ")
    # RFC 7235 section 2.1: the scheme is case-insensitive.
    if scheme.lower() != "bearer" or not token.strip():
        raise refused("NOT_AUTHENTICATED", "Expected an authorization of the Bearer scheme")
    return token.strip()


@dataclass(kw_only=True)
class Rules:
    """The checks and the key-cache policy both guards share; holds no lock and makes no call."""

    issuer: str
    audience: str
    leeway: float
    jwks_max_age: float
    refetch_interval: float
    clock: Callable[[], float]
    monotonic: Callable[[], float]
    keys: dict[str, jwt.PyJWK] | None = field(default=None, init=False)
    refetch_at: float = field(default=0.0, init=False)  # monotonic time to fetch the cached keys again
    last_unknown_refetch: float | None = field(default=None, init=False)

    def kid_of(self, token: str) -> str:
        if len(token) > MAX_TOKEN_LENGTH or not is_canonical(token):
            raise refused("TOKEN_INVALID", "Token is invalid")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise refused("TOKEN_INVALID", "Token is invalid") from exc
        kid, typ = header.get("kid"), header.get("typ")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise refused("TOKEN_INVALID", "Token is invalid")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise refused("TOKEN_INVALID", "Token is not an access token")
        return kid

    def needs_fetch(self, kid: str, now: float) -> bool:
        """Whether to fetch the key set before looking up `kid`: the cache is empty or stale, or `kid` is
        unknown (a rotation) and no refetch for an unknown `kid` was made within the refetch interval."""
        if self.keys is None or now >= self.refetch_at:
            return True
        recently = self.last_unknown_refetch is not None and (
            now - self.last_unknown_refetch < self.refetch_interval
        )
        if kid in self.keys or recently:
            return False
        self.last_unknown_refetch = now
        return True

    def key(self, kid: str) -> jwt.PyJWK | None:
        assert self.keys is not None  # fetched, or fetch_failed raised
        return self.keys.get(kid)

    def fetched(self, document: dict[str, Any], now: float) -> None:
        keys: dict[str, jwt.PyJWK] = {}
        for member in document.get("keys", []):
            try:
                key = jwt.PyJWK.from_dict(member)
            except jwt.PyJWKError:
                continue  # a key type this library cannot use: skip it, as RFC 7517 section 5 allows
            if key.key_id:
                keys[key.key_id] = key
        self.keys = keys
        self.refetch_at = now + self.jwks_max_age

    def fetch_failed(self, error: AuthServiceError, now: float) -> None:
        if self.keys is None:
            raise GuardError(
                grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE", "Cannot fetch the keys"
            ) from error
        # Keep verifying with the keys we have, and do not make every call wait on the outage:
        # try again only after the refetch interval.
        self.refetch_at = now + self.refetch_interval

    def user(self, token: str, key: jwt.PyJWK | None) -> User:
        if key is None:
            raise refused("TOKEN_INVALID", "Token is signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                # Expiry is checked below against the injected clock, not pyjwt's time.time().
                options={
                    "require": ["iss", "aud", "sub", "sid", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise refused("TOKEN_INVALID", "Token is invalid") from exc
        if not isinstance(claims["exp"], int) or not all(isinstance(claims[c], str) for c in ("sub", "sid")):
            raise refused("TOKEN_INVALID", "Token is invalid")
        # RFC 7519 section 4.1.4: the token must not be accepted on or after `exp`.
        if self.clock() >= claims["exp"] + self.leeway:
            raise refused("TOKEN_EXPIRED", "Token has expired")
        return User(
            user_id=claims["sub"],
            session_id=claims["sid"],
            email=claims.get("email"),
            role=claims.get("role"),
            expires_at=claims["exp"],
        )


@contextmanager
def introspection_unavailable() -> Iterator[None]:
    """Around the Introspect call of `check_revocation`: any failure refuses the call with UNAVAILABLE."""
    try:
        yield
    except AuthServiceError as exc:
        # Unreachable, or refused (e.g. a wrong introspection secret, a misconfiguration): either way
        # the session cannot be confirmed, which is never a reason to let the call in.
        raise GuardError(
            grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE", "Cannot check the session now"
        ) from exc


def confirm_live(answer: Introspection, user: User) -> None:
    """Refuse a token whose session Introspect does not report live (SESSION_REVOKED)."""
    if not answer.active or answer.session_id != user.session_id:
        raise refused("SESSION_REVOKED", "Session has been revoked")
