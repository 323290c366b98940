"""A guard for internal services: verify `authorization: Bearer <access token>` offline against the
service's JWKS, optionally confirm through Introspect that the session is still live, and name the user
(`GuardInterceptor` in interceptor.py hands it to handlers).

Offline checks (signature by `kid`, `alg` EdDSA, `iss`, `aud`, `exp`, `type == "access"`) cost no call.
They cannot see a revocation: an access token of a revoked session verifies until it expires (15 minutes
by default). With `check_revocation=True` every request also costs one Introspect call, and is refused
when the service cannot answer (fail closed).

The key set is fetched once and cached for `jwks_max_age` seconds. A token with an unknown `kid` (the
service rotated its key) triggers a refetch, at most once per `refetch_interval` seconds, so a flood of
forged `kid`s cannot turn into a flood of GetJwks calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import jwt

from authsvc_client.errors import AuthServiceError, DeadlineExceeded, Unavailable
from authsvc_client.models import Introspection

ALGORITHM = "EdDSA"
MAX_TOKEN_LENGTH = 4096  # the service issues nothing longer


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


def _refused(reason: str, message: str) -> GuardError:
    return GuardError(grpc.StatusCode.UNAUTHENTICATED, reason, message)


class AuthServiceSource(Protocol):
    """What the guard needs of the service: `AsyncAuthClient` fits."""

    async def get_jwks(self) -> dict[str, Any]: ...

    async def introspect(self, token: str) -> Introspection: ...


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token of the one `authorization: Bearer <token>` entry; raise GuardError otherwise."""
    values = [value for key, value in metadata if key == "authorization"]
    if not values:
        raise _refused("NOT_AUTHENTICATED", "Not authenticated")
    if len(values) > 1 or not isinstance(values[0], str):
        raise _refused("TOKEN_INVALID", "Expected exactly one authorization entry")
    scheme, _, token = values[0].strip().partition(" ")
    # RFC 7235 section 2.1: the scheme is case-insensitive.
    if scheme.lower() != "bearer" or not token.strip():
        raise _refused("NOT_AUTHENTICATED", "Expected an authorization of the Bearer scheme")
    return token.strip()


class BearerGuard:
    """Verifies access tokens of one authsvc deployment. Share one per process (it holds the key cache)."""

    def __init__(
        self,
        source: AuthServiceSource,
        *,
        issuer: str = "authsvc",
        audience: str = "authsvc",
        check_revocation: bool = False,
        leeway: float = 0.0,
        jwks_max_age: float = 300.0,
        refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._issuer = issuer
        self._audience = audience
        self.check_revocation = check_revocation
        self._leeway = leeway
        self._max_age = jwks_max_age
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._monotonic = monotonic
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._refetch_at = 0.0  # monotonic time after which the cached keys are fetched again
        self._last_unknown_refetch: float | None = None
        self._lock = asyncio.Lock()

    async def verify_bearer(self, metadata: Iterable[tuple[str, str | bytes]]) -> User:
        """The user named by the call's `authorization: Bearer` metadata; raise GuardError otherwise."""
        return await self.verify_token(bearer_token(metadata))

    async def verify_token(self, token: str) -> User:
        """The user of a valid access token; raise GuardError (UNAUTHENTICATED or UNAVAILABLE) otherwise."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise _refused("TOKEN_INVALID", "Token is invalid")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _refused("TOKEN_INVALID", "Token is invalid") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise _refused("TOKEN_INVALID", "Token is invalid")
        key = await self._key(kid)
        if key is None:
            raise _refused("TOKEN_INVALID", "Token is signed by an unknown key")
        claims = self._decode(token, key)
        user = User(
            user_id=claims["sub"],
            session_id=claims["sid"],
            email=claims.get("email"),
            role=claims.get("role"),
            expires_at=claims["exp"],
        )
        if self.check_revocation:
            await self._confirm_live(token, user)
        return user

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # Expiry is checked below against the injected clock, not pyjwt's time.time().
                options={
                    "require": ["iss", "aud", "sub", "sid", "exp", "type"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise _refused("TOKEN_INVALID", "Token is invalid") from exc
        if claims["type"] != "access":
            raise _refused("TOKEN_INVALID", "Token is not an access token")
        if not isinstance(claims["exp"], int) or not all(isinstance(claims[c], str) for c in ("sub", "sid")):
            raise _refused("TOKEN_INVALID", "Token is invalid")
        # RFC 7519 section 4.1.4: the token must not be accepted on or after `exp`.
        if self._clock() >= claims["exp"] + self._leeway:
            raise _refused("TOKEN_EXPIRED", "Token has expired")
        return claims

    async def _confirm_live(self, token: str, user: User) -> None:
        try:
            answer = await self._source.introspect(token)
        except (Unavailable, DeadlineExceeded) as exc:
            raise GuardError(
                grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE", "Cannot check the session now"
            ) from exc
        except AuthServiceError as exc:
            # E.g. a wrong introspection secret: a misconfiguration, never a reason to let the call in.
            raise GuardError(
                grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE", "Cannot check the session"
            ) from exc
        if not answer.active or answer.session_id != user.session_id:
            raise _refused("SESSION_REVOKED", "Session has been revoked")

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        async with self._lock:
            now = self._monotonic()
            just_fetched = self._keys is None or now >= self._refetch_at
            if just_fetched:
                await self._fetch(now)
            assert self._keys is not None
            key = self._keys.get(kid)
            recently = self._last_unknown_refetch is not None and (
                now - self._last_unknown_refetch < self._refetch_interval
            )
            if key is None and not just_fetched and not recently:
                self._last_unknown_refetch = now
                await self._fetch(now)
                key = self._keys.get(kid)
            return key

    async def _fetch(self, now: float) -> None:
        try:
            document = await self._source.get_jwks()
        except AuthServiceError as exc:
            if self._keys is None:
                raise GuardError(
                    grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE", "Cannot fetch the keys"
                ) from exc
            # Keep verifying with the keys we have, and do not make every call wait on the outage:
            # try again only after the refetch interval.
            self._refetch_at = now + self._refetch_interval
            return
        keys: dict[str, jwt.PyJWK] = {}
        for member in document.get("keys", []):
            try:
                key = jwt.PyJWK.from_dict(member)
            except jwt.PyJWKError:
                continue  # a key type this library cannot use: skip it, as RFC 7517 section 5 allows
            if key.key_id:
                keys[key.key_id] = key
        self._keys = keys
        self._refetch_at = now + self._max_age
