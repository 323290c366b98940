"""The outbox on every backend (memory, SQLite, PostgreSQL): queueing, claiming, and each outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authsvc.store import AlreadyExists
from authsvc.store.migrate import migrate
from authsvc.store.outbox import LAST_ERROR_LENGTH, OutgoingMail, insert_mail_statement
from authsvc.store.outbox_sql import SqlOutbox
from authsvc.store.schema import users
from authsvc.store.sql import open_store
from tests.mail.conftest import LEASE, T0, new_mail

MINUTE = timedelta(minutes=1)


async def test_a_queued_mail_is_claimed_whole_and_then_hidden_from_other_claimers(outbox):
    mail = new_mail(T0)
    await outbox.enqueue(mail)
    assert await outbox.pending_count() == 1

    [claim] = await outbox.claim(T0, LEASE, limit=10)
    assert claim.mail == mail
    assert claim.attempts == 0
    assert claim.claimed_until == T0 + LEASE
    assert await outbox.claim(T0, LEASE, limit=10) == []
    assert await outbox.claim(T0 + LEASE - MINUTE, LEASE, limit=10) == []
    assert await outbox.pending_count() == 1  # claimed is still to send


async def test_claims_take_the_oldest_due_first_up_to_the_limit(outbox):
    mails = [new_mail(T0 + timedelta(seconds=n), n=n) for n in (3, 1, 2, 0)]
    for mail in mails:
        await outbox.enqueue(mail)
    later = new_mail(T0 + timedelta(hours=1), n=9)
    await outbox.enqueue(later)  # not due yet

    first = await outbox.claim(T0 + MINUTE, LEASE, limit=3)
    second = await outbox.claim(T0 + MINUTE, LEASE, limit=3)
    assert [c.mail.subject for c in first] == [
        "Reset your password 0",
        "Reset your password 1",
        "Reset your password 2",
    ]
    assert [c.mail.subject for c in second] == ["Reset your password 3"]
    assert len({c.claim_id for c in first}) == 1
    assert first[0].claim_id != second[0].claim_id


async def test_a_claim_whose_lease_ran_out_is_taken_over_and_the_first_claimer_changes_nothing(outbox):
    await outbox.enqueue(new_mail(T0))
    [dead] = await outbox.claim(T0, LEASE, limit=1)
    [taker] = await outbox.claim(T0 + LEASE, LEASE, limit=1)
    assert taker.mail.id == dead.mail.id

    assert await outbox.mark_sent(dead, T0 + LEASE) is False
    assert await outbox.mark_failed(dead, T0 + LEASE + MINUTE, "late") is False
    assert await outbox.release(dead) is False
    assert (await outbox.find(dead.mail.id)).sent_at is None
    assert await outbox.mark_sent(taker, T0 + LEASE) is True
    assert (await outbox.find(dead.mail.id)).sent_at == T0 + LEASE


async def test_a_sent_mail_forgets_its_body_and_is_never_claimed_again(outbox):
    mail = new_mail(T0)
    await outbox.enqueue(mail)
    [claim] = await outbox.claim(T0, LEASE, limit=1)
    assert await outbox.mark_sent(claim, T0 + MINUTE) is True

    record = await outbox.find(mail.id)
    assert record.sent_at == T0 + MINUTE
    assert record.mail.text_body == ""
    assert record.mail.html_body is None
    assert record.mail.recipient == mail.recipient
    assert record.next_attempt_at is None
    assert await outbox.pending_count() == 0
    assert await outbox.claim(T0 + timedelta(days=30), LEASE, limit=10) == []


async def test_a_failed_attempt_is_counted_and_the_mail_waits_until_its_next_attempt(outbox):
    mail = new_mail(T0)
    await outbox.enqueue(mail)
    [claim] = await outbox.claim(T0, LEASE, limit=1)
    assert (
        await outbox.mark_failed(claim, T0 + 10 * MINUTE, "SMTPConnectError: refused\n  at 127.0.0.1") is True
    )

    record = await outbox.find(mail.id)
    assert record.attempts == 1
    assert record.next_attempt_at == T0 + 10 * MINUTE
    assert record.last_error == "SMTPConnectError: refused at 127.0.0.1"
    assert record.claimed_until is None
    assert record.mail.text_body == mail.text_body
    # Its claim is over, yet it is not due before its next attempt.
    assert await outbox.claim(T0 + 9 * MINUTE, LEASE, limit=1) == []
    [again] = await outbox.claim(T0 + 10 * MINUTE, LEASE, limit=1)
    assert again.attempts == 1


async def test_a_long_error_is_cut_short(outbox):
    await outbox.enqueue(new_mail(T0))
    [claim] = await outbox.claim(T0, LEASE, limit=1)
    await outbox.mark_failed(claim, T0 + MINUTE, "x" * 5000)
    record = await outbox.find(claim.mail.id)
    assert len(record.last_error) == LAST_ERROR_LENGTH
    assert record.last_error.endswith("...")


async def test_an_abandoned_mail_forgets_its_body_leaves_the_queue_and_keeps_its_error(outbox):
    mail = new_mail(T0)
    await outbox.enqueue(mail)
    [claim] = await outbox.claim(T0, LEASE, limit=1)
    assert await outbox.mark_abandoned(claim, "MailRejected: 550 no such mailbox") is True

    record = await outbox.find(mail.id)
    assert record.abandoned
    assert record.attempts == 1
    assert record.mail.text_body == ""
    assert record.last_error == "MailRejected: 550 no such mailbox"
    assert await outbox.pending_count() == 0
    assert await outbox.claim(T0 + timedelta(days=30), LEASE, limit=10) == []


async def test_a_released_mail_is_claimable_at_once_with_no_attempt_counted(outbox):
    await outbox.enqueue(new_mail(T0))
    [claim] = await outbox.claim(T0, LEASE, limit=1)
    assert await outbox.release(claim) is True
    [again] = await outbox.claim(T0, LEASE, limit=1)
    assert again.mail.id == claim.mail.id
    assert again.attempts == 0


async def test_a_mail_id_is_queued_once(outbox):
    mail = new_mail(T0)
    await outbox.enqueue(mail)
    with pytest.raises(AlreadyExists):
        await outbox.enqueue(mail)
    assert await outbox.pending_count() == 1


async def test_finished_mails_are_deleted_in_batches_and_pending_ones_kept(outbox):
    for n in range(5):
        await outbox.enqueue(new_mail(T0, n=n))
    claims = await outbox.claim(T0, LEASE, limit=5)
    for claim in claims[:2]:
        await outbox.mark_sent(claim, T0)
    await outbox.mark_abandoned(claims[2], "refused")
    await outbox.mark_failed(claims[3], T0 + MINUTE, "down")

    assert await outbox.delete_finished_before(T0, batch_size=10) == 0  # queued at T0: not before it
    assert await outbox.delete_finished_before(T0 + MINUTE, batch_size=2) == 2
    assert await outbox.delete_finished_before(T0 + MINUTE, batch_size=2) == 1
    assert await outbox.pending_count() == 2
    assert await outbox.find(claims[3].mail.id) is not None


def test_a_mail_header_cannot_carry_a_line_break():
    with pytest.raises(ValueError, match="one line"):
        OutgoingMail("ada@example.com", "Hi\r\nBcc: eve@example.com", "body", None, T0)
    with pytest.raises(ValueError, match="one line"):
        OutgoingMail("ada@example.com\nBcc: eve@example.com", "Hi", "body", None, T0)


async def test_a_mail_is_queued_exactly_when_the_transaction_that_writes_it_commits(database_url):
    await migrate(database_url)
    store = await open_store(database_url, timeout_seconds=10)
    outbox = SqlOutbox(store.runner)
    kept, lost = new_mail(T0, n=1), new_mail(T0, n=2)

    def commits(connection):
        connection.execute(insert_mail_statement(kept))

    def fails_after_writing(connection):
        connection.execute(insert_mail_statement(lost))
        connection.execute(
            users.insert().values(id="u1", email="a@example.com", password_hash="h", created_at=T0)
        )
        connection.execute(
            users.insert().values(id="u1", email="b@example.com", password_hash="h", created_at=T0)
        )

    try:
        await store.runner.run(commits)
        with pytest.raises(AlreadyExists):
            await store.runner.run(fails_after_writing)
        assert await outbox.pending_count() == 1
        assert await outbox.find(kept.id) is not None
        assert await outbox.find(lost.id) is None
    finally:
        await store.close()
