"""The outbox in the service's own database (table `mail_outbox`), over the SQL store's runner.

Claiming is one UPDATE of the due rows that a subquery picks, returning them:

- on PostgreSQL the subquery locks what it picks with `FOR UPDATE SKIP LOCKED`, so two replicas claiming
  at once take disjoint rows instead of waiting for each other (or claiming the same row twice: the outer
  WHERE repeats the due condition, which PostgreSQL checks again on the newest row version);
- on SQLite the runner's `BEGIN IMMEDIATE` makes every transaction the only writer, so the statement is
  atomic as it is.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Integer, Row, and_, bindparam, delete, func, or_, select, update

from authsvc.store.outbox import (
    ClaimedMail,
    MailRecord,
    OutgoingMail,
    insert_mail_statement,
    shorten_error,
)
from authsvc.store.runners import Runner
from authsvc.store.schema import mail_outbox

_T = mail_outbox
_DUE = and_(
    _T.c.next_attempt_at <= bindparam("now"),
    or_(_T.c.claimed_until.is_(None), _T.c.claimed_until <= bindparam("now")),
)
_CLAIMED_COLUMNS = (
    _T.c.id,
    _T.c.recipient,
    _T.c.subject,
    _T.c.text_body,
    _T.c.html_body,
    _T.c.created_at,
    _T.c.next_attempt_at,
    _T.c.attempts,
    _T.c.claimed_until,
)


def _claim_statement(*, skip_locked: bool) -> Any:
    candidates = (
        select(_T.c.id)
        .where(_DUE)
        .order_by(_T.c.next_attempt_at, _T.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(_T)
        .where(_T.c.id.in_(candidates.scalar_subquery()), _DUE)
        .values(claim_id=bindparam("new_claim_id"), claimed_until=bindparam("until"))
        .returning(*_CLAIMED_COLUMNS)
    )


_CLAIM_POSTGRESQL = _claim_statement(skip_locked=True)
_CLAIM_SQLITE = _claim_statement(skip_locked=False)
_HELD = and_(_T.c.id == bindparam("mail_id"), _T.c.claim_id == bindparam("held_claim_id"))
_UNCLAIMED: dict[str, Any] = {"claim_id": None, "claimed_until": None}
_NO_BODY: dict[str, Any] = {"text_body": "", "html_body": None}
_MARK_SENT = (
    update(_T)
    .where(_HELD)
    .values(sent_at=bindparam("now"), next_attempt_at=None, last_error=None, **_UNCLAIMED, **_NO_BODY)
)
_MARK_FAILED = (
    update(_T)
    .where(_HELD)
    .values(
        attempts=_T.c.attempts + 1,
        next_attempt_at=bindparam("retry_at"),
        last_error=bindparam("error"),
        **_UNCLAIMED,
    )
)
_MARK_ABANDONED = (
    update(_T)
    .where(_HELD)
    .values(
        attempts=_T.c.attempts + 1,
        next_attempt_at=None,
        last_error=bindparam("error"),
        **_UNCLAIMED,
        **_NO_BODY,
    )
)
_RELEASE = update(_T).where(_HELD).values(**_UNCLAIMED)
_PENDING_COUNT = select(func.count()).select_from(_T).where(_T.c.next_attempt_at.is_not(None))
_SELECT_MAIL = select(_T).where(_T.c.id == bindparam("mail_id"))
_DELETE_FINISHED_BEFORE = delete(_T).where(
    _T.c.id.in_(
        select(_T.c.id)
        .where(_T.c.next_attempt_at.is_(None), _T.c.created_at < bindparam("cutoff"))
        .limit(bindparam("batch_size", type_=Integer))
        .scalar_subquery()
    )
)


def _mail(row: Row[Any]) -> OutgoingMail:
    return OutgoingMail(
        id=row.id,
        recipient=row.recipient,
        subject=row.subject,
        text_body=row.text_body,
        html_body=row.html_body,
        created_at=row.created_at,
    )


def _claimed(row: Row[Any], claim_id: str) -> ClaimedMail:
    return ClaimedMail(_mail(row), claim_id=claim_id, claimed_until=row.claimed_until, attempts=row.attempts)


def _enqueue(connection: Connection, mail: OutgoingMail) -> None:
    connection.execute(insert_mail_statement(mail))


def _claim(connection: Connection, now: datetime, until: datetime, limit: int) -> list[ClaimedMail]:
    statement = _CLAIM_POSTGRESQL if connection.dialect.name == "postgresql" else _CLAIM_SQLITE
    claim_id = str(uuid.uuid4())
    rows = connection.execute(
        statement, {"now": now, "limit": limit, "new_claim_id": claim_id, "until": until}
    ).all()
    # RETURNING keeps no order: oldest due first, as the subquery picked them.
    ordered = sorted(rows, key=lambda row: (row.next_attempt_at, row.id))
    return [_claimed(row, claim_id) for row in ordered]


def _mark(connection: Connection, statement: Any, claim: ClaimedMail, **params: Any) -> bool:
    held = {"mail_id": claim.mail.id, "held_claim_id": claim.claim_id}
    return connection.execute(statement, {**held, **params}).rowcount == 1


def _pending_count(connection: Connection) -> int:
    return int(connection.execute(_PENDING_COUNT).scalar_one())


def _find(connection: Connection, mail_id: str) -> MailRecord | None:
    row = connection.execute(_SELECT_MAIL, {"mail_id": mail_id}).one_or_none()
    if row is None:
        return None
    return MailRecord(
        _mail(row), row.attempts, row.next_attempt_at, row.claimed_until, row.sent_at, row.last_error
    )


def _delete_finished_before(connection: Connection, cutoff: datetime, batch_size: int) -> int:
    params = {"cutoff": cutoff, "batch_size": batch_size}
    return int(connection.execute(_DELETE_FINISHED_BEFORE, params).rowcount)


class SqlOutbox:
    """The `Outbox` in the SQL store's database; pass the store's runner (`SqlStore.runner`).

    It shares the store's connections and closes nothing: the store does.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def enqueue(self, mail: OutgoingMail) -> None:
        await self._runner.run(partial(_enqueue, mail=mail))

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[ClaimedMail]:
        if limit <= 0:
            raise ValueError("limit must be positive")
        return await self._runner.run(partial(_claim, now=now, until=now + lease, limit=limit))

    async def mark_sent(self, claim: ClaimedMail, now: datetime) -> bool:
        return await self._runner.run(partial(_mark, statement=_MARK_SENT, claim=claim, now=now))

    async def mark_failed(self, claim: ClaimedMail, next_attempt_at: datetime, error: str) -> bool:
        return await self._runner.run(
            partial(
                _mark,
                statement=_MARK_FAILED,
                claim=claim,
                retry_at=next_attempt_at,
                error=shorten_error(error),
            )
        )

    async def mark_abandoned(self, claim: ClaimedMail, error: str) -> bool:
        return await self._runner.run(
            partial(_mark, statement=_MARK_ABANDONED, claim=claim, error=shorten_error(error))
        )

    async def release(self, claim: ClaimedMail) -> bool:
        return await self._runner.run(partial(_mark, statement=_RELEASE, claim=claim))

    async def pending_count(self) -> int:
        return await self._runner.run(_pending_count)

    async def find(self, mail_id: str) -> MailRecord | None:
        return await self._runner.run(partial(_find, mail_id=mail_id))

    async def delete_finished_before(self, cutoff: datetime, batch_size: int) -> int:
        return await self._runner.run(partial(_delete_finished_before, cutoff=cutoff, batch_size=batch_size))
