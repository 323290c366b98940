"""The courier: sends the outbox's mail in the background, retrying while the mail system is down.

Each round claims the due mails (authsvc/store/outbox.py: a claimed mail is no other replica's until its
lease ends), hands each to the `MailDelivery` and records the outcome:

- taken: marked sent;
- refused for good (`MailRejected`, a 5xx for the recipient), or still failing `give_up_after` since it
  was queued: abandoned;
- any other failure (connection refused, timeout, 4xx, authentication): tried again after a backoff that
  starts at `retry_seconds` and doubles at each failure, up to `max_backoff`.

A failed send ends the round (the mail system is most likely down): during an outage each round tries
one mail, instead of every mail waiting out its own timeout. It wakes at once when told a mail was queued
(`queued()`), and otherwise looks every `poll_seconds` (for mail other replicas queued, and retries
falling due).

One log line per attempt names the mail by id, with the recipient's domain only: never a body, a link
(it carries a token) or a full address.

Outcomes go to `on_event(event, count)` (`mail_queued`, `mail_sent`, `mail_failed`, `mail_abandoned`):
the domain's `Observer.observe` fits, so the transport's metrics count them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from authsvc.clock import Clock
from authsvc.store.interface import StoreError
from authsvc.store.outbox import ClaimedMail, MailDelivery, MailRejected, Outbox, OutgoingMail

log = logging.getLogger("authsvc.mail")

MAIL_QUEUED = "mail_queued"
MAIL_SENT = "mail_sent"
MAIL_FAILED = "mail_failed"  # one failed attempt; the mail is tried again
MAIL_ABANDONED = "mail_abandoned"

DEFAULT_RETRY_SECONDS = 30.0
DEFAULT_MAX_BACKOFF = timedelta(hours=1)
# Past this, its link has long expired: the mail is not worth sending any more.
DEFAULT_GIVE_UP_AFTER = timedelta(days=3)
DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_SEND_TIMEOUT_SECONDS = 60.0
DEFAULT_BATCH_SIZE = 10
DEFAULT_POLL_SECONDS = 5.0


def _ignore(_event: str, _count: int) -> None:
    pass


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Courier:
    """Delivers the outbox's mail; one per server process, `start()`ed with it and `close()`d with it."""

    def __init__(
        self,
        outbox: Outbox,
        delivery: MailDelivery,
        clock: Clock,
        *,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        max_backoff: timedelta = DEFAULT_MAX_BACKOFF,
        give_up_after: timedelta = DEFAULT_GIVE_UP_AFTER,
        lease: timedelta = DEFAULT_LEASE,
        send_timeout_seconds: float = DEFAULT_SEND_TIMEOUT_SECONDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        on_event: Callable[[str, int], None] = _ignore,
    ) -> None:
        if retry_seconds <= 0 or send_timeout_seconds <= 0 or poll_seconds <= 0 or batch_size <= 0:
            raise ValueError(
                "retry_seconds, send_timeout_seconds, poll_seconds and batch_size must be positive"
            )
        # A mail is sent only while its claim has a whole send timeout left (see _deliver), so a lease
        # shorter than that would never send anything.
        if lease.total_seconds() <= send_timeout_seconds:
            raise ValueError("the lease must be longer than the send timeout")
        self._outbox = outbox
        self._delivery = delivery
        self._clock = clock
        self._retry = timedelta(seconds=retry_seconds)
        self._max_backoff = max_backoff
        self._give_up_after = give_up_after
        self._lease = lease
        self._send_timeout = send_timeout_seconds
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._on_event = on_event
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._pending = 0

    @property
    def pending(self) -> int:
        """Mails still to send, as counted after the last round (the whole outbox, every replica's)."""
        return self._pending

    def queued(self, count: int = 1) -> None:
        """Tell the courier `count` mails were just committed to the outbox: they are counted as queued,
        and the courier wakes to send them now instead of at its next poll."""
        self._on_event(MAIL_QUEUED, count)
        self.notify()

    def notify(self) -> None:
        """Wake the courier for a round now."""
        self._wake.set()

    async def enqueue(self, mail: OutgoingMail) -> None:
        """Queue a mail on its own (a mail that goes with a token is written in the token's transaction
        instead: `insert_mail_statement`, then `queued()`)."""
        await self._outbox.enqueue(mail)
        self.queued()

    def backoff(self, failures: int) -> timedelta:
        """The wait after the `failures`-th failed attempt: retry_seconds, doubled each time, capped."""
        if failures >= 32:  # past any sensible cap; keeps the power small
            return self._max_backoff
        delay: timedelta = self._retry * 2 ** (failures - 1)
        return min(delay, self._max_backoff)

    async def deliver_once(self) -> int:
        """Claim one batch of due mails and deliver it; return how many were claimed.

        Raise StoreError when the outbox cannot be reached (the mails claimed stay claimed until their
        lease ends, then any courier takes them).
        """
        claimed, _ = await self._deliver_batch()
        return claimed

    async def deliver_due(self) -> int:
        """Deliver batches until no mail is due or a send fails; return how many mails were claimed."""
        total = 0
        while not self._stopping:
            claimed, failed = await self._deliver_batch()
            total += claimed
            if failed or claimed < self._batch_size:
                break
        return total

    async def _deliver_batch(self) -> tuple[int, bool]:
        """Claim and deliver one batch; return how many were claimed and whether a send failed.

        A failed send ends the batch: the mail system is most likely down, and the rest would each wait
        out the same timeout. What was not tried goes back, due as it was: during an outage each round
        tries one mail. So does what is left when stopping, or when the lease runs short.
        """
        claims = await self._outbox.claim(self._clock(), self._lease, self._batch_size)
        remaining = list(claims)
        failed = False
        try:
            while remaining and not self._stopping and not failed:
                if remaining[0].claimed_until - self._clock() < timedelta(seconds=self._send_timeout):
                    # Too little lease left for a whole send: another courier could take the mail over
                    # mid-send and send it too.
                    break
                failed = not await self._deliver(remaining.pop(0))
        finally:
            for claim in remaining:
                with contextlib.suppress(StoreError):
                    await self._outbox.release(claim)
        return len(claims), failed

    async def _deliver(self, claim: ClaimedMail) -> bool:
        """Send one mail and record the outcome; False when the send failed and will be retried."""
        mail, attempt = claim.mail, claim.attempts + 1
        where = {"mail_id": mail.id, "attempt": attempt, "recipient_domain": _domain_of(mail.recipient)}
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._delivery.deliver(mail)
        except MailRejected as exc:
            await self._abandon(claim, _describe(exc), where)
            return True
        except Exception as exc:
            await self._retry_later(claim, _describe(exc), where)
            return False
        if await self._outbox.mark_sent(claim, self._clock()):
            log.info("mail sent", extra=where)
        else:
            log.warning("mail sent after its claim ran out: it may go out twice", extra=where)
        self._on_event(MAIL_SENT, 1)
        return True

    async def _retry_later(self, claim: ClaimedMail, error: str, where: dict[str, object]) -> None:
        now = self._clock()
        if now - claim.mail.created_at >= self._give_up_after:
            await self._abandon(claim, error, where)
            return
        retry_at = now + self.backoff(claim.attempts + 1)
        await self._outbox.mark_failed(claim, retry_at, error)
        self._on_event(MAIL_FAILED, 1)
        log.warning(
            "mail not sent, will retry", extra={**where, "error": error, "retry_at": retry_at.isoformat()}
        )

    async def _abandon(self, claim: ClaimedMail, error: str, where: dict[str, object]) -> None:
        await self._outbox.mark_abandoned(claim, error)
        self._on_event(MAIL_FAILED, 1)
        self._on_event(MAIL_ABANDONED, 1)
        log.error("mail abandoned", extra={**where, "error": error})

    async def run_forever(self) -> None:
        """Deliver what is due, then wait to be woken or for the next poll; until `close()`."""
        outbox_down = False
        while not self._stopping:
            self._wake.clear()
            try:
                await self.deliver_due()
                self._pending = await self._outbox.pending_count()
                if outbox_down:
                    log.info("mail outbox reachable again")
                outbox_down = False
            except StoreError as exc:
                if not outbox_down:
                    log.warning("mail outbox unreachable, mail waits: %s", exc)
                outbox_down = True
            except Exception:
                # A bug must not stop mail for good: logged, and the next round tries again.
                log.exception("mail round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    def start(self) -> None:
        """Run `run_forever` in a task of the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="authsvc-courier")

    async def close(self, grace_seconds: float | None = None) -> None:
        """Stop: the mail being sent gets `grace_seconds` (default: the send timeout) to finish; the rest
        of its batch is given back for the next courier."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        grace = self._send_timeout if grace_seconds is None else grace_seconds
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
