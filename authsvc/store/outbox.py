"""The mail outbox: mail waiting to be sent, kept in the service's database until a mail server took it.

A mail row is written in the same transaction as whatever it announces (`insert_mail_statement`), so a
request never waits on the mail server and no mail is lost to an outage or a restart. The courier
(authsvc/domain/courier.py) of any replica claims due rows, sends them and marks the outcome:

- `claim` hides a row from every other claimer until its lease ends, so one replica sends each mail; a
  claimer that dies leaves the row to be claimed again when the lease is over (the mail may then go out
  twice, never zero times);
- `mark_sent` and `mark_abandoned` forget the body (it holds a link with a token); `mark_failed` counts
  the attempt and sets when to try again; `release` gives a row back untried (on shutdown).

Every `mark_*` acts only while the claim is still the row's: a claimer whose lease ran out and was taken
over changes nothing (the answer is False).

Also here, the vocabulary the courier and the mail adapters (authsvc/mail) share without importing each
other: `MailDelivery` and `MailRejected`.

Two implementations: `SqlOutbox` (outbox_sql.py) and `MemoryOutbox` (outbox_memory.py, for tests).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Delete, Insert

from authsvc.store.schema import mail_outbox

LAST_ERROR_LENGTH = 200


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class OutgoingMail:
    """One mail: a recipient, a subject, a plain-text body and, optionally, an HTML one."""

    recipient: str
    subject: str
    text_body: str
    html_body: str | None
    created_at: datetime
    id: str = field(default_factory=_new_id)

    def __post_init__(self) -> None:
        # Header injection: a line break in a header value would start a header of the caller's choosing.
        for name in ("recipient", "subject"):
            value = getattr(self, name)
            if "\r" in value or "\n" in value:
                raise ValueError(f"a mail's {name} must be one line")
        if "@" not in self.recipient:
            raise ValueError("a mail's recipient must be an email address")
        if self.created_at.tzinfo is None:
            raise ValueError("naive datetime given to the outbox: pass UTC-aware times")


@dataclass(frozen=True)
class ClaimedMail:
    """A mail claimed for sending: by `claim_id`, until `claimed_until`, after `attempts` failed tries."""

    mail: OutgoingMail
    claim_id: str
    claimed_until: datetime
    attempts: int


@dataclass(frozen=True)
class MailRecord:
    """A mail's row as it stands: what `find` answers (for operators and tests)."""

    mail: OutgoingMail  # with empty bodies once sent or abandoned
    attempts: int  # failed attempts so far
    next_attempt_at: datetime | None  # None once sent or abandoned
    claimed_until: datetime | None
    sent_at: datetime | None
    last_error: str | None

    @property
    def abandoned(self) -> bool:
        return self.next_attempt_at is None and self.sent_at is None


def shorten_error(error: str) -> str:
    """An error as `last_error` keeps it: one line, at most LAST_ERROR_LENGTH characters."""
    line = " ".join(error.split())
    return line if len(line) <= LAST_ERROR_LENGTH else line[: LAST_ERROR_LENGTH - 3] + "..."


class Outbox(Protocol):
    """Mail waiting to be sent. Times are UTC and come from the caller's clock."""

    async def enqueue(self, mail: OutgoingMail) -> None:
        """Queue `mail`, due at once (`mail.created_at`). Raise AlreadyExists when its id is taken."""

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedMail]:
        """Claim up to `limit` mails due at `now` and not claimed by anyone else, oldest due first, until
        `now + lease`. Raise StoreUnavailable when the outbox cannot be reached."""

    async def mark_sent(self, claim: ClaimedMail, now: datetime) -> bool:
        """Record that the mail went out; its body is forgotten. False when the claim was lost."""

    async def mark_failed(self, claim: ClaimedMail, next_attempt_at: datetime, error: str) -> bool:
        """Count a failed attempt and try again at `next_attempt_at`. False when the claim was lost."""

    async def mark_abandoned(self, claim: ClaimedMail, error: str) -> bool:
        """Count a failed attempt and never try again; the body is forgotten. False when the claim was
        lost."""

    async def release(self, claim: ClaimedMail) -> bool:
        """Give the mail back untried: due as it was, claimable at once. False when the claim was lost."""

    async def pending_count(self) -> int:
        """How many mails are still to be sent (claimed or not, due or waiting to be retried)."""

    async def find(self, mail_id: str) -> MailRecord | None:
        """The mail's row as it stands, or None when there is none."""

    async def delete_finished_before(self, cutoff: datetime, batch_size: int) -> int:
        """Delete up to `batch_size` sent or abandoned mails queued before `cutoff`; return how many."""


def insert_mail_statement(mail: OutgoingMail) -> Insert:
    """The INSERT that queues `mail`: run it on the connection of a store operation, so the mail is queued
    exactly when that operation's transaction commits (a token row and the mail carrying it, together)."""
    return mail_outbox.insert().values(
        id=mail.id,
        recipient=mail.recipient,
        subject=mail.subject,
        text_body=mail.text_body,
        html_body=mail.html_body,
        created_at=mail.created_at,
        next_attempt_at=mail.created_at,
        attempts=0,
    )


def delete_mail_to_statement(recipient: str) -> Delete:
    """The DELETE of every mail to `recipient`, sent ones too (their rows still name the address): run it
    on the connection of the store operation that deletes the account, in the same transaction."""
    return mail_outbox.delete().where(mail_outbox.c.recipient == recipient)


class MailRejected(Exception):
    """The mail server refused this mail for good (a 5xx answer for its recipient): retrying cannot help.

    Any other error from a `MailDelivery` is taken as passing (the server is down, busy or misconfigured)
    and the mail is tried again later.
    """


class MailDelivery(Protocol):
    """Hands mail to a mail system (authsvc/mail: an SMTP server, or files in development)."""

    async def deliver(self, mail: OutgoingMail) -> None:
        """Return once the mail system took `mail`; raise MailRejected when it refused it for good."""
