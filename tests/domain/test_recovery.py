"""Password reset and email verification in the domain, over the in-memory store: an unknown email costs
what a known one does, the tokens and hashes that are stored, and the throttles at the documented
defaults (5 reset requests per email and 20 per address an hour, 10 wrong reset tokens per address in 15
minutes, 5 verification requests per user an hour)."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import (
    ResetTokenInvalid,
    Throttled,
    TokenTooLong,
    VerificationTokenInvalid,
    WeakPassword,
)
from authsvc.domain.recovery import WAKE_DELAY_SECONDS, RecoveryService, TokenLifetimes
from authsvc.domain.throttling import RecoveryPolicy, RecoveryThrottle
from authsvc.mail.compose import MailComposer
from authsvc.store.outbox import OutgoingMail
from tests.domain.conftest import EMAIL, HERE, Domain, MakeDomain
from tests.mailbox import token_of

LIFETIMES = TokenLifetimes(reset=timedelta(minutes=30), verify=timedelta(hours=24))
POLICY = RecoveryPolicy(
    forgot_window=timedelta(hours=1),
    forgot_max_per_email=5,
    forgot_max_per_address=20,
    reset_window=timedelta(minutes=15),
    reset_max_failures_per_address=10,
    verify_window=timedelta(hours=1),
    verify_max_per_user=5,
)
NEW_PASSWORD = "a brand new passphrase"


class RecordingMails:
    """The real composer, remembering the links it wrote."""

    def __init__(self) -> None:
        self._composer = MailComposer("https://auth.example.com")
        self.links: list[tuple[str, str, str]] = []  # (kind, recipient, token)

    def reset(self, recipient: str, token: str, lifetime: timedelta, now: datetime) -> OutgoingMail:
        self.links.append(("reset", recipient, token))
        return self._composer.reset(recipient, token, lifetime, now)

    def verify(self, recipient: str, token: str, lifetime: timedelta, now: datetime) -> OutgoingMail:
        self.links.append(("verify", recipient, token))
        return self._composer.verify(recipient, token, lifetime, now)


class RecordingQueue:
    """The courier's side: how many mails it was told of, and how often it was woken."""

    def __init__(self) -> None:
        self.mails = 0
        self.woken = 0

    def queued(self, count: int = 1) -> None:
        self.mails += count
        self.notify()

    def notify(self) -> None:
        self.woken += 1


class CountingStore:
    """The domain's store, counting the calls made to it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


@dataclass
class Recovery:
    domain: Domain
    service: RecoveryService
    store: CountingStore
    mails: RecordingMails
    queue: RecordingQueue = field(default_factory=RecordingQueue)

    def token(self, index: int = -1) -> str:
        return self.mails.links[index][2]


@pytest.fixture
def recovery(domain: Domain) -> Recovery:
    return recovery_over(domain)


def recovery_over(domain: Domain, policy: RecoveryPolicy = POLICY, wake_delay: float = 0) -> Recovery:
    store, mails, queue = CountingStore(domain.store), RecordingMails(), RecordingQueue()
    service = RecoveryService(
        store,
        domain.hasher,
        mails,
        LIFETIMES,
        domain.clock,
        queue=queue,
        throttle=RecoveryThrottle(domain.attempts, policy, domain.clock),
        wake_delay_seconds=wake_delay,  # 0: at once, so that the tests need not wait
    )
    return Recovery(domain, service, store, mails, queue)


async def test_an_unknown_email_costs_what_a_known_one_does_and_only_the_known_one_is_mailed(
    recovery: Recovery,
):
    await recovery.domain.register()
    hashed_before = len(recovery.domain.hasher.hashed)

    async def work_of(email: str) -> tuple[Counter[str], int, int, int]:
        recovery.store.calls.clear()
        links, woken = len(recovery.mails.links), recovery.queue.woken
        checks = recovery.domain.hasher.checks
        await recovery.service.forgot_password(email, HERE)
        return (
            Counter(recovery.store.calls),
            len(recovery.mails.links) - links,
            recovery.queue.woken - woken,
            recovery.domain.hasher.checks - checks,
        )

    known = await work_of(EMAIL)
    unknown = await work_of("nobody@example.com")
    assert known == unknown == (Counter({"create_reset_token": 1}), 1, 1, 0)
    assert len(recovery.domain.hasher.hashed) == hashed_before  # no bcrypt work either way
    assert recovery.queue.mails == 1  # the known one's mail alone was written
    assert await recovery.domain.store.outbox.pending_count() == 1


async def test_the_courier_is_woken_only_after_the_answer_known_email_or_not(domain: Domain):
    recovery = recovery_over(domain, wake_delay=WAKE_DELAY_SECONDS)
    await domain.register()
    for email in (EMAIL, "nobody@example.com"):
        await recovery.service.forgot_password(email, HERE)
    assert recovery.queue.woken == 0  # the answers went first
    async with asyncio.timeout(5):
        while recovery.queue.woken < 2:
            await asyncio.sleep(0.01)
    assert recovery.queue.mails == 1


async def test_only_the_tokens_hash_is_stored_and_the_link_carries_a_long_random_token(recovery: Recovery):
    await recovery.domain.register()
    await recovery.service.forgot_password(EMAIL, HERE)
    await recovery.service.forgot_password(EMAIL, HERE)
    first, second = recovery.token(0), recovery.token(1)
    assert first != second
    assert len(first) >= 43  # 32 random bytes, base64url
    mailed = {token_of(_link(mail)): mail.recipient for mail in await _mails(recovery)}
    assert mailed == {first: EMAIL, second: EMAIL}
    # The store knows each token by its SHA-256 only; the newer one voided the older.
    store, now = recovery.domain.store, recovery.domain.clock()
    for token, works in ((first, False), (second, True)):
        spent = await store.reset_password(hashlib.sha256(token.encode()).digest(), "$2b$04$x", "test", now)
        assert (spent is not None) == works


async def _mails(recovery: Recovery) -> list[OutgoingMail]:
    """Every mail in the outbox, as the courier would claim them."""
    claimed = await recovery.domain.store.outbox.claim(recovery.domain.clock(), timedelta(minutes=5), 100)
    return [claim.mail for claim in claimed]


def _link(mail: OutgoingMail) -> str:
    return next(word for word in mail.text_body.split() if "/account/" in word)


async def test_a_reset_hashes_the_new_password_at_the_current_cost_and_ends_every_session(
    make_domain: MakeDomain,
):
    domain = make_domain(bcrypt_cost=5)
    recovery = recovery_over(domain)
    registered = await domain.register()
    await domain.login()
    await domain.login()
    await recovery.service.forgot_password(EMAIL, HERE)
    revoked = await recovery.service.reset_password(recovery.token(), NEW_PASSWORD, HERE)
    assert revoked == 2
    assert domain.hasher.hashed[-1] == NEW_PASSWORD.encode()
    user = await domain.store.get_user(registered.user_id)
    assert user.password_hash.startswith("$2b$05$")
    assert await domain.store.list_sessions(user.id, domain.clock()) == []
    assert user.email_verified  # the link reached the address
    await domain.login(password=NEW_PASSWORD)


async def test_a_bad_new_password_or_token_costs_no_bcrypt_work_and_no_attempt(recovery: Recovery):
    hashed = len(recovery.domain.hasher.hashed)
    with pytest.raises(WeakPassword):
        await recovery.service.reset_password("anything", "short", HERE)
    with pytest.raises(TokenTooLong):
        await recovery.service.reset_password("t" * 4097, NEW_PASSWORD, HERE)
    with pytest.raises(ResetTokenInvalid):
        await recovery.service.reset_password("", NEW_PASSWORD, HERE)
    assert len(recovery.domain.hasher.hashed) == hashed
    assert recovery.store.calls == Counter()


async def test_the_eleventh_wrong_reset_token_from_an_address_is_throttled_without_bcrypt_work(
    recovery: Recovery,
):
    for n in range(10):
        with pytest.raises(ResetTokenInvalid):
            await recovery.service.reset_password(f"guess-{n}", NEW_PASSWORD, HERE)
    hashed = len(recovery.domain.hasher.hashed)
    with pytest.raises(Throttled) as throttled:
        await recovery.service.reset_password("guess-10", NEW_PASSWORD, HERE)
    assert throttled.value.retry_after_seconds == 900
    assert len(recovery.domain.hasher.hashed) == hashed
    other = ClientInfo(ip_address="198.51.100.9")
    with pytest.raises(ResetTokenInvalid):  # another address is not held back
        await recovery.service.reset_password("guess-11", NEW_PASSWORD, other)


async def test_the_sixth_reset_request_for_an_email_is_throttled_known_or_not(recovery: Recovery):
    await recovery.domain.register()
    for email in (EMAIL, "nobody@example.com"):
        for n in range(5):
            await recovery.service.forgot_password(email, ClientInfo(ip_address=f"198.51.100.{n}"))
        with pytest.raises(Throttled) as throttled:
            await recovery.service.forgot_password(email, ClientInfo(ip_address="198.51.100.99"))
        assert throttled.value.retry_after_seconds == 3600
    assert recovery.queue.mails == 5


async def test_the_twenty_first_reset_request_from_an_address_is_throttled(recovery: Recovery):
    for n in range(20):
        await recovery.service.forgot_password(f"user{n}@example.com", HERE)
    with pytest.raises(Throttled):
        await recovery.service.forgot_password("user20@example.com", HERE)


async def test_verification_marks_the_email_and_the_next_access_token_says_so(recovery: Recovery):
    domain = recovery.domain
    await domain.register()
    tokens = await domain.login()
    caller = await domain.caller(tokens)
    assert await recovery.service.request_email_verification(caller, HERE)
    assert recovery.mails.links[-1][:2] == ("verify", EMAIL)
    await recovery.service.verify_email(recovery.token(), HERE)
    refreshed = await domain.refresh(tokens)
    assert domain.tokens.read_access(refreshed.access_token, domain.clock()).email_verified
    # Verified: the next request mails nothing (and answers the same).
    assert not await recovery.service.request_email_verification(caller, HERE)
    assert recovery.queue.mails == 1
    with pytest.raises(VerificationTokenInvalid):
        await recovery.service.verify_email(recovery.token(), HERE)


async def test_a_verification_link_expires_after_a_day(recovery: Recovery):
    domain = recovery.domain
    await domain.register()
    caller = await domain.caller(await domain.login())
    await recovery.service.request_email_verification(caller, HERE)
    domain.clock.advance(LIFETIMES.verify.total_seconds())
    with pytest.raises(VerificationTokenInvalid):
        await recovery.service.verify_email(recovery.token(), HERE)


async def test_the_sixth_verification_request_of_a_user_in_an_hour_is_throttled(recovery: Recovery):
    domain = recovery.domain
    await domain.register()
    caller = await domain.caller(await domain.login())
    for _ in range(5):
        await recovery.service.request_email_verification(caller, HERE)
    with pytest.raises(Throttled):
        await recovery.service.request_email_verification(caller, HERE)
    domain.clock.advance(3600)
    await recovery.service.request_email_verification(caller, HERE)


async def test_a_disabled_account_gets_no_reset_mail_and_its_token_stops_working(recovery: Recovery):
    domain = recovery.domain
    await domain.register()
    before = await domain.store.get_user_by_email(EMAIL)
    await recovery.service.forgot_password(EMAIL, HERE)
    token = recovery.token()
    await domain.store.set_user_disabled(EMAIL, True, domain.clock())
    await recovery.service.forgot_password(EMAIL, HERE)  # the same answer: no error
    assert recovery.queue.mails == 1
    with pytest.raises(ResetTokenInvalid):
        await recovery.service.reset_password(token, NEW_PASSWORD, HERE)
    assert (await domain.store.get_user_by_email(EMAIL)).password_hash == before.password_hash
