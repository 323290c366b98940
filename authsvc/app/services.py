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
from authsvc.domain.account import AccountService
from authsvc.domain.admin import AdminService
from authsvc.domain.introspection_guard import IntrospectionGuard, IntrospectionPolicy
from authsvc.domain.passwords import PasswordHasher
from authsvc.domain.recovery import AccountMails, MailQueue, RecoveryService, TokenLifetimes
from authsvc.domain.service import AuthService, TokenPolicy
from authsvc.domain.sessions import SessionService
from authsvc.domain.throttling import (
    LoginPolicy,
    LoginThrottle,
    RecoveryPolicy,
    RecoveryThrottle,
    RegisterPolicy,
    RegisterThrottle,
)
from authsvc.domain.tokens import TokenCodec
from authsvc.mail.compose import MailComposer, MailTemplates
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
    account: AccountService
    admin: AdminService
    recovery: RecoveryService

    def close(self) -> None:
        self.hasher.close()


def build_services(
    settings: Settings,
    store: Store,
    attempts: AttemptStore,
    keys: SigningKeys,
    clock: Clock,
    *,
    mails: AccountMails | None = None,
    mail_queue: MailQueue | None = None,
) -> Services:
    """The services over `store`, `attempts` and `keys`, configured by `settings`. Opens nothing.

    Account mails are written by `mails` (default: the templates of AUTHSVC_MAIL_TEMPLATES_DIR, raising
    ValueError when they cannot be used) and announced to `mail_queue`, the courier (default: none, the
    mail waits in the outbox for a courier)."""
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
    # The password checks of the caller's own account count on the login throttle, as Login's do.
    account = AccountService(store, hasher, clock, throttle=login_throttle)
    admin = AdminService(store, clock)
    return Services(
        auth,
        sessions,
        tokens,
        hasher,
        login_throttle,
        register_throttle,
        guard,
        account=account,
        admin=admin,
        recovery=_recovery(settings, store, hasher, attempts, clock, mails=mails, mail_queue=mail_queue),
    )


def account_mails(settings: Settings) -> MailComposer:
    """The account mails of this deployment: links on AUTHSVC_PUBLIC_URL, its templates. Raise ValueError,
    naming the file, when a template in AUTHSVC_MAIL_TEMPLATES_DIR cannot be used."""
    mail = settings.mail
    return MailComposer(mail.links_base, MailTemplates.load(mail.templates_dir))


def _recovery(
    settings: Settings,
    store: Store,
    hasher: PasswordHasher,
    attempts: AttemptStore,
    clock: Clock,
    *,
    mails: AccountMails | None,
    mail_queue: MailQueue | None,
) -> RecoveryService:
    lifetimes = TokenLifetimes(
        reset=timedelta(seconds=settings.reset_token_ttl_seconds),
        verify=timedelta(seconds=settings.verify_token_ttl_seconds),
    )
    policy = RecoveryPolicy(
        forgot_window=timedelta(seconds=settings.forgot_window_seconds),
        forgot_max_per_email=settings.forgot_max_per_email,
        forgot_max_per_address=settings.forgot_max_per_address,
        reset_window=timedelta(seconds=settings.reset_window_seconds),
        reset_max_failures_per_address=settings.reset_max_failures_per_address,
        verify_window=timedelta(seconds=settings.verify_request_window_seconds),
        verify_max_per_user=settings.verify_request_max_per_user,
    )
    return RecoveryService(
        store,
        hasher,
        mails or account_mails(settings),
        lifetimes,
        clock,
        queue=mail_queue,
        throttle=RecoveryThrottle(attempts, policy, clock),
    )


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
