"""The outbox in memory, for tests that need no database: the same behaviour as `SqlOutbox`, one process."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.store.interface import AlreadyExists
from authsvc.store.outbox import ClaimedMail, MailRecord, OutgoingMail, shorten_error


@dataclass
class _Row:
    mail: OutgoingMail
    next_attempt_at: datetime | None
    attempts: int = 0
    claimed_until: datetime | None = None
    claim_id: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


class MemoryOutbox:
    """The `Outbox` in a dict. Every method runs without awaiting, so each is atomic on the event loop."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}

    async def enqueue(self, mail: OutgoingMail) -> None:
        if mail.id in self._rows:
            raise AlreadyExists("a unique value is taken")
        self._rows[mail.id] = _Row(mail, next_attempt_at=mail.created_at)

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedMail]:
        if limit <= 0:
            raise ValueError("limit must be positive")
        due = [
            row
            for row in self._rows.values()
            if row.next_attempt_at is not None
            and row.next_attempt_at <= now
            and (row.claimed_until is None or row.claimed_until <= now)
        ]
        due.sort(key=lambda row: (row.next_attempt_at, row.mail.id))
        claim_id, until = str(uuid.uuid4()), now + lease
        claimed = []
        for row in due[:limit]:
            row.claim_id, row.claimed_until = claim_id, until
            claimed.append(ClaimedMail(row.mail, claim_id, until, row.attempts))
        return claimed

    def _held(self, claim: ClaimedMail) -> _Row | None:
        row = self._rows.get(claim.mail.id)
        if row is None or row.claim_id != claim.claim_id:
            return None
        row.claim_id = row.claimed_until = None
        return row

    @staticmethod
    def _forget_body(row: _Row) -> None:
        row.mail = dataclasses.replace(row.mail, text_body="", html_body=None)

    async def mark_sent(self, claim: ClaimedMail, now: datetime) -> bool:
        row = self._held(claim)
        if row is None:
            return False
        row.sent_at, row.next_attempt_at, row.last_error = now, None, None
        self._forget_body(row)
        return True

    async def mark_failed(self, claim: ClaimedMail, next_attempt_at: datetime, error: str) -> bool:
        row = self._held(claim)
        if row is None:
            return False
        row.attempts += 1
        row.next_attempt_at, row.last_error = next_attempt_at, shorten_error(error)
        return True

    async def mark_abandoned(self, claim: ClaimedMail, error: str) -> bool:
        row = self._held(claim)
        if row is None:
            return False
        row.attempts += 1
        row.next_attempt_at, row.last_error = None, shorten_error(error)
        self._forget_body(row)
        return True

    async def release(self, claim: ClaimedMail) -> bool:
        return self._held(claim) is not None

    async def pending_count(self) -> int:
        return sum(1 for row in self._rows.values() if row.next_attempt_at is not None)

    async def find(self, mail_id: str) -> MailRecord | None:
        row = self._rows.get(mail_id)
        if row is None:
            return None
        return MailRecord(
            row.mail, row.attempts, row.next_attempt_at, row.claimed_until, row.sent_at, row.last_error
        )

    def delete_mail_to(self, recipient: str) -> int:
        """`delete_mail_to_statement`'s twin: delete every mail to `recipient`, sent or not; return how
        many. Not a coroutine, so the memory store runs it in the same step as the account's deletion."""
        doomed = [mail_id for mail_id, row in self._rows.items() if row.mail.recipient == recipient]
        for mail_id in doomed:
            del self._rows[mail_id]
        return len(doomed)

    async def delete_finished_before(self, cutoff: datetime, batch_size: int) -> int:
        finished = [
            mail_id
            for mail_id, row in self._rows.items()
            if row.next_attempt_at is None and row.mail.created_at < cutoff
        ][:batch_size]
        for mail_id in finished:
            del self._rows[mail_id]
        return len(finished)
