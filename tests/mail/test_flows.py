"""The server's mail end to end: a reset mail asked for while the SMTP server is down goes out once it is
back, one queued when the server stops goes out from the next server over the same database, two
replicas over one PostgreSQL database send each mail exactly once, and without AUTHSVC_SMTP_URL mail is
written as .eml files under the data dir (what `make run` does)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.start import RunningServer, StartupError, start_server
from authsvc.store.outbox_sql import SqlOutbox
from tests import databases
from tests.conftest import PASSWORD, ManualClock, ServerHandle, make_settings
from tests.mail.smtp_server import SmtpServer
from tests.mailbox import Mailbox, token_of
from tests.transport.test_recovery import (
    EMAIL,
    NEW_PASSWORD,
    forgot,
    link_of,
    mail_overrides,
    reset,
    signed_up,
)

# Each waits for the courier to deliver a mail (real timers); tests/domain/test_recovery.py: the rules, fast.
pytestmark = pytest.mark.slow

RETRY_SECONDS = 2


async def open_handle(settings: Any, clock: ManualClock) -> ServerHandle:
    running = await start_server(settings, clock=clock)
    channel = grpc.aio.insecure_channel(running.target)
    return ServerHandle(settings, clock, running, channel, auth_pb2_grpc.AuthServiceStub(channel))


def sample(running: RunningServer, name: str) -> float:
    value = running.metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def until(condition: Any, seconds: float = 10.0) -> None:
    """Wait for `condition()` to hold (a bound, not a measurement: fails after `seconds`)."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def courier_of(running: RunningServer) -> Any:
    assert running.courier is not None
    return running.courier


async def test_a_reset_mail_asked_for_while_the_smtp_server_is_down_goes_out_once_it_is_back(
    tmp_path, database_url, clock
):
    smtp = SmtpServer()  # its port, with nothing listening yet
    settings = make_settings(
        tmp_path / "data",
        database_url=database_url,
        mail_retry_seconds=RETRY_SECONDS,
        **mail_overrides(smtp.port),
    )
    server = await open_handle(settings, clock)
    try:
        await signed_up(server)
        await forgot(server)  # answered at once: the request never waits on the mail server
        running = server.running
        await until(lambda: sample(running, "authsvc_mail_attempts_failed_total") >= 1)
        assert sample(running, "authsvc_mails_queued_total") == 1
        smtp.start()
        clock.advance(RETRY_SECONDS)  # the first retry falls due
        courier_of(running).notify()
        received = (await smtp.wait_for(1))[0]
        await until(lambda: sample(running, "authsvc_mails_sent_total") == 1)
        await reset(server, token_of(link_of(received)))
        await server.stub.Login(auth_pb2.LoginRequest(email=EMAIL, password=NEW_PASSWORD))
        await until(lambda: sample(running, "authsvc_mail_outbox_pending") == 0)
    finally:
        await server.close()
        smtp.stop()


async def test_a_mail_queued_when_the_server_stops_goes_out_from_the_next_server(
    tmp_path, database_url, clock
):
    smtp = SmtpServer()
    settings = make_settings(
        tmp_path / "data",
        database_url=database_url,
        mail_retry_seconds=RETRY_SECONDS,
        **mail_overrides(smtp.port),
    )
    first = await open_handle(settings, clock)
    try:
        await signed_up(first)
        await forgot(first)
        await until(lambda: sample(first.running, "authsvc_mail_attempts_failed_total") >= 1)
    finally:
        await first.close()
    smtp.start()
    clock.advance(RETRY_SECONDS)
    second = await open_handle(settings, clock)  # the same database: the outbox is still there
    try:
        received = (await smtp.wait_for(1))[0]
        assert received.recipients == [EMAIL]
        answer = await reset(second, token_of(link_of(received)))
        assert answer.revoked_sessions == 1  # the session opened on the first server
    finally:
        await second.close()
        smtp.stop()
    assert len(smtp.received) == 1


@pytest.mark.slow
async def test_two_replicas_on_one_postgresql_database_send_each_mail_exactly_once(
    tmp_path, postgres_database, clock
):
    await databases.empty_database(postgres_database)
    smtp = SmtpServer().start()
    settings = make_settings(
        tmp_path / "data",
        database_url=postgres_database.url,
        register_max_per_address=100,
        forgot_max_per_address=100,
        **mail_overrides(smtp.port),
    )
    replicas = [await open_handle(settings, clock) for _ in range(2)]
    emails = [f"user{n}@example.com" for n in range(30)]
    try:
        for email in emails:
            await replicas[0].stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
        # Spread over both replicas at once: each wakes its own courier, and both claim from one outbox.
        await asyncio.gather(*(forgot(replicas[n % 2], email) for n, email in enumerate(emails)))
        await smtp.wait_for(len(emails))
        for replica in replicas:  # whatever either courier still had claimable
            await courier_of(replica.running).deliver_due()
        assert await SqlOutbox(replicas[0].running.store.runner).pending_count() == 0  # type: ignore[attr-defined]
        sent = sum(sample(replica.running, "authsvc_mails_sent_total") for replica in replicas)
    finally:
        for replica in replicas:
            await replica.close()
        smtp.stop()
    assert Counter(received.recipients[0] for received in smtp.received) == Counter(emails)
    assert len({received.message["Message-ID"] for received in smtp.received}) == len(emails)
    assert sent == len(emails)


async def test_without_an_smtp_url_mail_is_written_under_the_data_dir(tmp_path, database_url, clock, caplog):
    data_dir = tmp_path / "data"
    caplog.set_level("INFO", logger="authsvc.mail")
    server = await open_handle(make_settings(data_dir, database_url=database_url), clock)
    try:
        await signed_up(server)
        await forgot(server)
        link = await Mailbox(data_dir).next_link("reset", EMAIL)
        assert link.startswith("http://127.0.0.1:8080/account/reset?token=")  # the sidecar of `make run`
        await reset(server, token_of(link))
    finally:
        await server.close()
    folder = data_dir / "mail"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert [path.stat().st_mode & 0o777 for path in folder.glob("*.eml")] == [0o600]
    said = [record for record in caplog.records if record.getMessage().startswith("no AUTHSVC_SMTP_URL")]
    assert [Path(record.path) for record in said] == [folder]


async def test_a_mail_template_that_does_not_render_stops_the_start(tmp_path, database_url, clock):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "verify.html").write_text("<a href='$link'>$verify_here</a>")
    settings = make_settings(tmp_path / "data", database_url=database_url, mail_templates_dir=templates)
    with pytest.raises(StartupError, match="mail template verify"):
        await start_server(settings, clock=clock)
