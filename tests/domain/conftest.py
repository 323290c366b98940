"""Fast tests of the domain's rules: the services built directly over the in-memory store and counters.

No server, no database, no process: `make_domain` builds AuthService and SessionService with their
throttles over `MemoryStore` and `MemoryAttemptStore` (which pass the same conformance suite as SQLite,
PostgreSQL and Redis, tests/store/), a hand-moved clock and bcrypt at its cheapest cost, so a test of
rotation, grace, reuse or throttling runs in milliseconds. The policies are the documented defaults
(docs/configuration.md); a test changes one by passing its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authsvc.domain.audit import ClientInfo
from authsvc.domain.introspection_guard import IntrospectionGuard, IntrospectionPolicy
from authsvc.domain.keys import KeyRing
from authsvc.domain.passwords import PasswordHasher
from authsvc.domain.service import AuthService, IssuedTokens, Registered, TokenPolicy
from authsvc.domain.sessions import Caller, SessionService
from authsvc.domain.throttling import LoginPolicy, LoginThrottle, RegisterPolicy, RegisterThrottle
from authsvc.domain.tokens import TokenCodec
from authsvc.store.key_files import SigningKey, thumbprint
from authsvc.store.memory import MemoryStore
from authsvc.store.throttle_memory import MemoryAttemptStore
from tests.conftest import PASSWORD, ManualClock

ISSUER = AUDIENCE = "authsvc"
TOKEN_POLICY = TokenPolicy(
    access_ttl=timedelta(minutes=15), refresh_ttl=timedelta(days=30), refresh_grace=timedelta(seconds=10)
)
LOGIN_POLICY = LoginPolicy(
    window=timedelta(minutes=5),
    max_failures_per_pair=5,
    max_failures_per_address=50,
    account_window=timedelta(hours=1),
    max_failures_per_account=100,
    known_address_lifetime=timedelta(days=30),
)
REGISTER_POLICY = RegisterPolicy(window=timedelta(hours=1), max_per_address=10, max_per_window=1000)
INTROSPECTION_POLICY = IntrospectionPolicy(window=timedelta(minutes=5), max_failures_per_address=10)
EMAIL = "ada@example.com"
HERE = ClientInfo(user_agent="pytest", ip_address="203.0.113.7")
CHEAPEST_BCRYPT_COST = 4


class CountingHasher(PasswordHasher):
    """The real hasher, counting its bcrypt work: the passwords it hashed and the checks it ran."""

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds, threads=2)
        self.hashed: list[bytes] = []
        self.checks = 0

    async def hash(self, password: bytes) -> str:
        self.hashed.append(password)
        return await super().hash(password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.checks += 1
        return await super().verify(password, password_hash)


def new_signing_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    return SigningKey(thumbprint(public), private, public, created="manual")


@dataclass
class Domain:
    """The services of one replica, and what they run on, for a test to drive and inspect."""

    auth: AuthService
    sessions: SessionService
    store: MemoryStore
    attempts: MemoryAttemptStore
    clock: ManualClock
    hasher: CountingHasher
    tokens: TokenCodec
    key: SigningKey
    refresh_secret: bytes

    async def register(
        self, email: str = EMAIL, password: str = PASSWORD, client: ClientInfo = HERE
    ) -> Registered:
        return await self.auth.register(email, password, client)

    async def login(
        self, email: str = EMAIL, password: str = PASSWORD, client: ClientInfo = HERE
    ) -> IssuedTokens:
        return await self.auth.login(email, password, client)

    async def refresh(self, tokens: IssuedTokens, client: ClientInfo = HERE) -> IssuedTokens:
        return await self.auth.refresh(tokens.refresh_token, client)

    async def caller(self, tokens: IssuedTokens) -> Caller:
        """The caller behind the pair's access token (what every authenticated RPC checks first)."""
        return await self.sessions.authenticate(tokens.access_token)


class MakeDomain(Protocol):
    def __call__(
        self,
        *,
        token_policy: TokenPolicy = ...,
        login_policy: LoginPolicy = ...,
        register_policy: RegisterPolicy = ...,
        introspection_secret: str | None = ...,
        bcrypt_cost: int = ...,
        refresh_secret: bytes | None = ...,
        key: SigningKey | None = ...,
        like: Domain | None = ...,
    ) -> Domain: ...


@pytest.fixture
def make_domain() -> Iterator[MakeDomain]:
    """Build a domain. With `like`, another replica of that one: the same store, counters and clock,
    and unless given, the same signing key and refresh-token secret."""
    hashers: list[CountingHasher] = []

    def make(
        *,
        token_policy: TokenPolicy = TOKEN_POLICY,
        login_policy: LoginPolicy = LOGIN_POLICY,
        register_policy: RegisterPolicy = REGISTER_POLICY,
        introspection_secret: str | None = None,
        bcrypt_cost: int = CHEAPEST_BCRYPT_COST,
        refresh_secret: bytes | None = None,
        key: SigningKey | None = None,
        like: Domain | None = None,
    ) -> Domain:
        store = like.store if like else MemoryStore()
        attempts = like.attempts if like else MemoryAttemptStore()
        clock = like.clock if like else ManualClock()
        key = key or (like.key if like else new_signing_key())
        if refresh_secret is None:
            refresh_secret = like.refresh_secret if like else os.urandom(32)
        tokens = TokenCodec(KeyRing([key]), refresh_secret, ISSUER, AUDIENCE)
        hasher = CountingHasher(bcrypt_cost)
        hashers.append(hasher)
        auth = AuthService(
            store,
            hasher,
            tokens,
            token_policy,
            clock,
            throttle=LoginThrottle(attempts, login_policy, clock),
            register_throttle=RegisterThrottle(attempts, register_policy, clock),
        )
        guard = IntrospectionGuard(introspection_secret, attempts, INTROSPECTION_POLICY, clock)
        sessions = SessionService(store, tokens, clock, guard)
        return Domain(auth, sessions, store, attempts, clock, hasher, tokens, key, refresh_secret)

    yield make
    for hasher in hashers:
        hasher.close()


@pytest.fixture
def domain(make_domain: MakeDomain) -> Domain:
    return make_domain()
