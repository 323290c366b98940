"""A guard for internal services: verify `authorization: Bearer <access token>` offline against the
service's JWKS, optionally confirm through Introspect that the session is still live, and name the user
(`GuardInterceptor` in interceptor.py hands it to handlers). `BearerGuard` is for asyncio code,
`BlockingBearerGuard` for threads (a thread-pool grpc server, a WSGI app); both apply the rules of
verification.py.

Offline checks (signature by `kid`, `alg` EdDSA, `typ` at+jwt, one spelling per token, `iss`, `aud`,
`exp`) cost no call. They cannot see a revocation: an access token of a revoked session verifies until it
expires (15 minutes by default). With `check_revocation=True` every request also costs one Introspect
call, and is refused when the service cannot answer (fail closed).

The key set is fetched once and cached for `jwks_max_age` seconds. A token with an unknown `kid` (the
service rotated its key) triggers a refetch, at most once per `refetch_interval` seconds, so a flood of
forged `kid`s cannot turn into a flood of GetJwks calls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

import jwt

from authsvc_client.errors import AuthServiceError
from authsvc_client.models import Introspection
from authsvc_client.verification import Rules, User, bearer_token, confirm_live, introspection_unavailable

SourceT = TypeVar("SourceT")
LockT = TypeVar("LockT")


class AuthServiceSource(Protocol):
    """What `BearerGuard` needs of the service: `AsyncAuthClient` fits."""

    async def get_jwks(self) -> dict[str, Any]: ...

    async def introspect(self, token: str) -> Introspection: ...


class BlockingAuthServiceSource(Protocol):
    """What `BlockingBearerGuard` needs of the service: `AuthClient` fits."""

    def get_jwks(self) -> dict[str, Any]: ...

    def introspect(self, token: str) -> Introspection: ...


class _Guard(ABC, Generic[SourceT, LockT]):
    """What both guards share: the source, the rules (verification.py) and a lock of their kind."""

    def __init__(
        self,
        source: SourceT,
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
        self.check_revocation = check_revocation
        self._rules = Rules(
            issuer=issuer,
            audience=audience,
            leeway=leeway,
            jwks_max_age=jwks_max_age,
            refetch_interval=refetch_interval,
            clock=clock,
            monotonic=monotonic,
        )
        self._lock = self._new_lock()

    @abstractmethod
    def _new_lock(self) -> LockT: ...


class BearerGuard(_Guard[AuthServiceSource, asyncio.Lock]):
    """Verifies access tokens of one authsvc deployment, for asyncio code. Share one per process (it
    holds the key cache); keys are fetched by one caller at a time."""

    def _new_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    async def verify_bearer(self, metadata: Iterable[tuple[str, str | bytes]]) -> User:
        """The user named by the call's `authorization: Bearer` metadata; raise GuardError otherwise."""
        return await self.verify_token(bearer_token(metadata))

    async def verify_token(self, token: str) -> User:
        """The user of a valid access token; raise GuardError (UNAUTHENTICATED or UNAVAILABLE) otherwise."""
        kid = self._rules.kid_of(token)
        user = self._rules.user(token, await self._key(kid))
        if self.check_revocation:
            with introspection_unavailable():
                answer = await self._source.introspect(token)
            confirm_live(answer, user)
        return user

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        async with self._lock:
            now = self._rules.monotonic()
            if self._rules.needs_fetch(kid, now):
                try:
                    document = await self._source.get_jwks()
                except AuthServiceError as exc:
                    self._rules.fetch_failed(exc, now)
                else:
                    self._rules.fetched(document, now)
            return self._rules.key(kid)


class BlockingBearerGuard(_Guard[BlockingAuthServiceSource, threading.Lock]):
    """`BearerGuard` for threaded code, over a blocking `AuthClient`; safe to share between threads."""

    def _new_lock(self) -> threading.Lock:
        return threading.Lock()

    def verify_bearer(self, metadata: Iterable[tuple[str, str | bytes]]) -> User:
        """The user named by `authorization: Bearer` metadata (or headers as pairs, keys lower-case)."""
        return self.verify_token(bearer_token(metadata))

    def verify_token(self, token: str) -> User:
        """As `BearerGuard.verify_token`, blocking."""
        kid = self._rules.kid_of(token)
        user = self._rules.user(token, self._key(kid))
        if self.check_revocation:
            with introspection_unavailable():
                answer = self._source.introspect(token)
            confirm_live(answer, user)
        return user

    def _key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            now = self._rules.monotonic()
            if self._rules.needs_fetch(kid, now):
                try:
                    document = self._source.get_jwks()
                except AuthServiceError as exc:
                    self._rules.fetch_failed(exc, now)
                else:
                    self._rules.fetched(document, now)
            return self._rules.key(kid)
