"""The courier over a real SMTP server: delivery, retries with backoff while the server is down, refusals,
giving up, waking on a queued mail, what it logs and counts."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

import pytest

from authsvc.domain.courier import MAIL_ABANDONED, MAIL_FAILED, MAIL_QUEUED, MAIL_SENT, Courier
from authsvc.logs import JsonFormatter
from tests.mail.conftest import TOKEN, new_mail, smtp_delivery
from tests.mail.smtp_server import HeldHandler, SmtpServer
from tests.ports import free_port


def courier_for(outbox, port, clock, events=None, **options) -> Courier:
    record = events.update if events is not None else (lambda _counts: None)
    return Courier(
        outbox,
        smtp_delivery(f"smtp://127.0.0.1:{port}?timeout=5"),
        clock,
        retry_seconds=30,
        on_event=lambda event, count: record({event: count}),
        **options,
    )


async def test_a_queued_mail_is_delivered_once_with_its_headers_and_marked_sent(outbox, smtp_server, clock):
    mail = new_mail(clock())
    await outbox.enqueue(mail)
    events: Counter[str] = Counter()
    courier = courier_for(outbox, smtp_server.port, clock, events)

    assert await courier.deliver_due() == 1
    assert await courier.deliver_due() == 0

    [received] = smtp_server.received
    assert received.recipients == ["ada@example.com"]
    assert received.sender == "no-reply@auth.example.com"
    assert received.message["Subject"] == mail.subject
    assert (await outbox.find(mail.id)).sent_at == clock()
    assert await outbox.pending_count() == 0
    assert events == {MAIL_SENT: 1}


async def test_mail_waits_out_an_smtp_outage_with_backoff_and_goes_out_once_when_it_ends(outbox, clock):
    server = SmtpServer()  # its port is free: nothing listens yet
    mail = new_mail(clock())
    await outbox.enqueue(mail)
    events: Counter[str] = Counter()
    courier = courier_for(outbox, server.port, clock, events)

    await courier.deliver_due()
    record = await outbox.find(mail.id)
    assert record.attempts == 1
    assert record.next_attempt_at == clock() + timedelta(seconds=30)
    assert "SMTPConnectError" in record.last_error
    assert await outbox.pending_count() == 1

    await courier.deliver_due()  # not due yet: nothing tried
    assert (await outbox.find(mail.id)).attempts == 1

    clock.advance(30)
    await courier.deliver_due()
    record = await outbox.find(mail.id)
    assert record.attempts == 2
    assert record.next_attempt_at == clock() + timedelta(seconds=60)  # doubled

    server.start()
    try:
        clock.advance(59)
        await courier.deliver_due()
        assert server.received == []
        clock.advance(1)
        await courier.deliver_due()
        clock.advance(3600)
        await courier.deliver_due()
        assert len(server.received) == 1
    finally:
        server.stop()
    assert (await outbox.find(mail.id)).sent_at is not None
    assert events == {MAIL_FAILED: 2, MAIL_SENT: 1}


async def test_during_an_outage_each_round_tries_one_mail_and_gives_the_rest_back(outbox, clock):
    mails = [new_mail(clock(), n=n) for n in range(3)]
    for mail in mails:
        await outbox.enqueue(mail)
    courier = courier_for(outbox, free_port(), clock)

    assert await courier.deliver_due() == 3  # claimed as one batch ...
    records = [await outbox.find(mail.id) for mail in mails]
    assert sorted(record.attempts for record in records) == [0, 0, 1]  # ... one tried
    assert len(await outbox.claim(clock(), timedelta(minutes=5), limit=10)) == 2  # the rest due as they were


def test_the_backoff_doubles_from_the_retry_interval_up_to_its_cap(clock):
    courier = Courier(None, None, clock, retry_seconds=30, max_backoff=timedelta(hours=1))  # type: ignore[arg-type]
    waits = [courier.backoff(failures).total_seconds() for failures in (1, 2, 3, 4, 7, 8, 100)]
    assert waits == [30, 60, 120, 240, 1920, 3600, 3600]


async def test_a_recipient_refused_for_good_is_abandoned_at_once_and_a_passing_refusal_retried(outbox, clock):
    server = SmtpServer().start()
    server.handler.refuse = {
        "gone@example.com": "550 5.1.1 No such mailbox",
        "busy@example.com": "450 4.2.1 Try again later",
    }
    try:
        gone, busy = new_mail(clock(), "gone@example.com", 1), new_mail(clock(), "busy@example.com", 2)
        await outbox.enqueue(gone)
        await outbox.enqueue(busy)
        events: Counter[str] = Counter()
        courier = courier_for(outbox, server.port, clock, events)
        while await courier.deliver_due():  # a passing refusal ends a round: the next one goes on
            pass
    finally:
        server.stop()

    gone_record, busy_record = await outbox.find(gone.id), await outbox.find(busy.id)
    assert gone_record.abandoned
    assert "550" in gone_record.last_error
    assert gone_record.mail.text_body == ""
    assert not busy_record.abandoned
    assert busy_record.next_attempt_at == clock() + timedelta(seconds=30)
    assert "450" in busy_record.last_error
    assert await outbox.pending_count() == 1
    assert events == {MAIL_FAILED: 2, MAIL_ABANDONED: 1}
    assert server.received == []


async def test_a_mail_still_failing_long_after_it_was_queued_is_abandoned(outbox, clock):
    mail = new_mail(clock())
    await outbox.enqueue(mail)
    courier = courier_for(outbox, free_port(), clock, give_up_after=timedelta(days=1))
    await courier.deliver_due()
    assert not (await outbox.find(mail.id)).abandoned

    clock.advance(86_400)
    await courier.deliver_due()
    record = await outbox.find(mail.id)
    assert record.abandoned
    assert record.attempts == 2
    assert await outbox.pending_count() == 0


async def test_a_running_courier_sends_a_queued_mail_at_once_without_waiting_for_its_poll(
    outbox, smtp_server, clock
):
    events: Counter[str] = Counter()
    courier = courier_for(outbox, smtp_server.port, clock, events, poll_seconds=3600)
    courier.start()
    try:
        await smtp_server.wait_for(0)
        await courier.enqueue(new_mail(clock(), n=1))
        await smtp_server.wait_for(1)
        await courier.enqueue(new_mail(clock(), n=2))
        received = await smtp_server.wait_for(2)
    finally:
        await courier.close()
    assert [r.message["Subject"] for r in received] == ["Reset your password 1", "Reset your password 2"]
    assert events[MAIL_QUEUED] == 2


async def test_a_courier_closed_before_it_ran_sends_nothing_and_close_is_repeatable(
    outbox, smtp_server, clock
):
    await outbox.enqueue(new_mail(clock()))
    courier = courier_for(outbox, smtp_server.port, clock)
    await courier.close()
    await courier.close()
    assert await courier.deliver_due() == 0
    assert smtp_server.received == []
    assert await outbox.pending_count() == 1


async def test_no_log_line_holds_the_link_its_token_a_body_or_the_full_address(outbox, clock, caplog):
    server = SmtpServer()
    await outbox.enqueue(new_mail(clock()))
    courier = courier_for(outbox, server.port, clock)
    with caplog.at_level(logging.DEBUG, logger="authsvc"):
        await courier.deliver_due()  # fails: the server is down
        server.start()
        try:
            clock.advance(30)
            await courier.deliver_due()
        finally:
            server.stop()
    lines = [JsonFormatter().format(record) for record in caplog.records if record.name == "authsvc.mail"]
    assert [record.getMessage() for record in caplog.records if record.name == "authsvc.mail"] == [
        "mail not sent, will retry",
        "mail sent",
    ]
    for line in lines:
        assert TOKEN not in line
        assert "account/reset" not in line
        assert "ada@" not in line and "a***@" not in line
        assert '"recipient_domain": "example.com"' in line


def test_a_lease_no_longer_than_a_send_is_refused(clock):
    with pytest.raises(ValueError, match="lease"):
        Courier(None, None, clock, lease=timedelta(seconds=60), send_timeout_seconds=60)  # type: ignore[arg-type]


async def test_closing_lets_the_send_in_progress_finish_and_gives_the_rest_back_untried(outbox, clock):
    server = SmtpServer(handler=HeldHandler()).start()
    handler = server.handler
    assert isinstance(handler, HeldHandler)
    mails = [new_mail(clock(), n=n) for n in range(3)]
    for mail in mails:
        await outbox.enqueue(mail)
    courier = courier_for(outbox, server.port, clock)
    try:
        courier.start()
        assert await asyncio.to_thread(handler.arrived.wait, 10)  # the first mail is being sent
        closing = asyncio.create_task(courier.close(grace_seconds=30))
        await asyncio.sleep(0)  # close() has begun: the courier is stopping
        handler.released.set()
        await closing
    finally:
        handler.released.set()
        server.stop()

    [received] = server.received
    sent = next(mail for mail in mails if received.message["Subject"] == mail.subject)
    assert (await outbox.find(sent.id)).sent_at is not None
    # The other two go back as they were: another courier claims them at once, no attempt counted.
    rest = await outbox.claim(clock(), timedelta(minutes=5), limit=10)
    assert {claim.mail.id for claim in rest} == {mail.id for mail in mails} - {sent.id}
    assert [claim.attempts for claim in rest] == [0, 0]
