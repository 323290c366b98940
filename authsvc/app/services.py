"""The domain objects the server serves, built over the stores and keys they are given.

`build_services` takes any Store and AttemptStore (SQL, Redis, or a test's own), so tests can build the
same services the server runs without opening anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from authsvc.app.resources import SigningKeys
from authsvc.clock import Clock
from authsvc.domain.introspection_guard import IntrospectionGuard, IntrospectionPolicy
from authsvc.domain.passwords import PasswordHasher
from authsvc.domain.service import AuthService, TokenPolicy
from authsvc.domain.sessions import SessionService
from authsvc.domain.throttling import LoginPolicy, LoginThrottle, RegisterPolicy, RegisterThrottle
from authsvc.domain.tokens import TokenCodec
from authsvc.settings import Settings, is_loopback
from authsvc.store import Store
from authsvc.store.throttle import AttemptStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    auth: AuthService
    sessions: SessionService
    tokens: TokenCodec
    hasher: PasswordHasher  # owns a thread pool: close() it
    login_throttle: LoginThrottle
    register_throttle: RegisterThrottle
    introspection_guard: IntrospectionGuard

    def close(self) -> None:
        self.hasher.close()


def build_services(
    settings: Settings, store: Store, attempts: AttemptStore, keys: SigningKeys, clock: Clock
) -> Services:
    """The services over `store`, `attempts` and `keys`, configured by `settings`. Opens nothing."""
    hasher = PasswordHasher(settings.bcrypt_rounds, settings.hash_threads)
    policy = TokenPolicy(
        access_ttl=timedelta(seconds=settings.access_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_ttl_seconds),
        refresh_grace=timedelta(seconds=settings.refresh_grace_seconds),
    )
    tokens = TokenCodec(
        keys.ring, keys.refresh_secret, settings.issuer, settings.audience, settings.client_id
    )
    login_throttle = _login_throttle(settings, attempts, clock)
    register_throttle = _register_throttle(settings, attempts, clock)
    guard = _introspection_guard(settings, attempts, clock)
    auth = AuthService(
        store, hasher, tokens, policy, clock, throttle=login_throttle, register_throttle=register_throttle
    )
    sessions = SessionService(store, tokens, clock, guard)
    return Services(auth, sessions, tokens, hasher, login_throttle, register_throttle, guard)


def _login_throttle(settings: Settings, attempts: AttemptStore, clock: Clock) -> LoginThrottle:
    policy = LoginPolicy(
        window=timedelta(seconds=settings.login_window_seconds),
        max_failures_per_pair=settings.login_max_failures_per_account,
        max_failures_per_address=settings.login_max_failures_per_address,
        account_window=timedelta(seconds=settings.login_across_addresses_window_seconds),
        max_failures_per_account=settings.login_max_failures_across_addresses,
        known_address_lifetime=timedelta(seconds=settings.login_known_address_seconds),
    )
    return LoginThrottle(attempts, policy, clock)


def _register_throttle(settings: Settings, attempts: AttemptStore, clock: Clock) -> RegisterThrottle:
    policy = RegisterPolicy(
        window=timedelta(seconds=settings.register_window_seconds),
        max_per_address=settings.register_max_per_address,
        max_per_window=settings.register_max_per_window,
    )
    return RegisterThrottle(attempts, policy, clock)


def _introspection_guard(settings: Settings, attempts: AttemptStore, clock: Clock) -> IntrospectionGuard:
    if not settings.introspection_secret and not is_loopback(settings.grpc_listen):
        log.warning(
            "no AUTHSVC_INTROSPECTION_SECRET: Introspect answers loopback callers only",
            extra={"grpc_listen": settings.grpc_listen},
        )
    policy = IntrospectionPolicy(
        window=timedelta(seconds=settings.introspection_window_seconds),
        max_failures_per_address=settings.introspection_max_failures_per_address,
    )
    return IntrospectionGuard(settings.introspection_secret or None, attempts, policy, clock)
