"""Nothing is lost across a restart, and with several couriers on one database each mail goes out once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from authsvc.domain.courier import Courier
from authsvc.store.migrate import migrate
from authsvc.store.outbox_sql import SqlOutbox
from authsvc.store.sql import open_store
from tests import databases
from tests.mail.conftest import LEASE, new_mail, smtp_delivery, sqlite_url
from tests.mail.smtp_server import SmtpServer


def courier(store, port, clock, **options) -> Courier:
    return Courier(
        SqlOutbox(store.runner),
        smtp_delivery(f"smtp://127.0.0.1:{port}?timeout=5"),
        clock,
        lease=LEASE,
        **options,
    )


async def test_a_restarted_server_delivers_what_was_queued_during_an_smtp_outage(tmp_path, clock):
    url = sqlite_url(tmp_path / "data")
    await migrate(url)
    smtp = SmtpServer()  # down for now
    before = await open_store(url)
    try:
        mails = [new_mail(clock(), n=n) for n in range(3)]
        first = courier(before, smtp.port, clock)
        for mail in mails:
            await first.enqueue(mail)
        await first.deliver_due()
        assert await SqlOutbox(before.runner).pending_count() == 3
        await first.close()
    finally:
        await before.close()

    smtp.start()
    after = await open_store(url)
    try:
        second = courier(after, smtp.port, clock)
        await second.deliver_due()
        # The outage ended the first round after one try: that mail waits out its backoff, restart or
        # not; the two never tried go at once.
        assert len(smtp.received) == 2
        clock.advance(30)
        await second.deliver_due()
        assert await SqlOutbox(after.runner).pending_count() == 0
    finally:
        await after.close()
        smtp.stop()
    assert sorted(r.message["Subject"] for r in smtp.received) == sorted(m.subject for m in mails)


async def test_mail_claimed_by_a_courier_that_died_goes_out_after_its_lease(tmp_path, clock, smtp_server):
    url = sqlite_url(tmp_path / "data")
    await migrate(url)
    died = await open_store(url)
    try:
        outbox = SqlOutbox(died.runner)
        for n in range(2):
            await outbox.enqueue(new_mail(clock(), n=n))
        assert len(await outbox.claim(clock(), LEASE, limit=10)) == 2  # ... and then the process died
    finally:
        await died.close()

    restarted = await open_store(url)
    try:
        taker = courier(restarted, smtp_server.port, clock)
        assert await taker.deliver_due() == 0
        clock.advance(LEASE.total_seconds())
        assert await taker.deliver_due() == 2
    finally:
        await restarted.close()
    assert len(smtp_server.received) == 2


@pytest.mark.slow
async def test_two_couriers_on_one_postgresql_deliver_every_mail_exactly_once(postgres_database, clock):
    await databases.empty_database(postgres_database)
    url = postgres_database.url
    smtp = SmtpServer().start()
    stores = [await open_store(url, timeout_seconds=10) for _ in range(2)]
    try:
        mails = [new_mail(clock(), f"user{n}@example.com", n) for n in range(50)]
        for mail in mails:
            await SqlOutbox(stores[0].runner).enqueue(mail)
        # Small batches, so the two claim over and over while the other is mid-batch.
        couriers = [courier(store, smtp.port, clock, batch_size=3) for store in stores]
        claimed = await asyncio.gather(*(c.deliver_due() for c in couriers))
        assert sum(claimed) == 50
        assert await SqlOutbox(stores[1].runner).pending_count() == 0
    finally:
        for store in stores:
            await store.close()
        smtp.stop()
    per_recipient = Counter(r.recipients[0] for r in smtp.received)
    assert per_recipient == Counter(mail.recipient for mail in mails)
    assert len({r.message["Message-ID"] for r in smtp.received}) == 50
