"""Fixtures for the mail tests: outboxes on every backend, a real SMTP server, a courier over them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authsvc.mail.delivery import MessageDelivery
from authsvc.mail.smtp import SmtpSender, parse_smtp_url
from authsvc.store.migrate import migrate
from authsvc.store.outbox import Outbox, OutgoingMail
from authsvc.store.outbox_memory import MemoryOutbox
from authsvc.store.outbox_sql import SqlOutbox
from authsvc.store.sql import open_store
from tests import databases
from tests.mail.smtp_server import SmtpServer

FROM = "Authsvc <no-reply@auth.example.com>"
TOKEN = "tok-3f9a1c7e5b2d4a6c8e0f1a3b5c7d9e2f"


def new_mail(now: datetime, recipient: str = "ada@example.com", n: int = 0) -> OutgoingMail:
    link = f"https://auth.example.com/account/reset?token={TOKEN}"
    return OutgoingMail(
        recipient=recipient,
        subject=f"Reset your password {n}",
        text_body=f"Open {link}\n",
        html_body=f'<p><a href="{link}">Reset</a></p>\n',
        created_at=now,
    )


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'authsvc.db'}"


@pytest.fixture(params=["memory", *databases.BACKENDS])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for the memory outbox, else the URL of an empty database on each backend."""
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    database: databases.PostgresDatabase = request.getfixturevalue("postgres_database")
    databases.empty_database_sync(database)
    return database.url


@pytest.fixture
async def outbox(outbox_url: str | None) -> AsyncIterator[Outbox]:
    if outbox_url is None:
        yield MemoryOutbox()
        return
    await migrate(outbox_url)
    store = await open_store(outbox_url, timeout_seconds=10)
    try:
        yield SqlOutbox(store.runner)
    finally:
        await store.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server, started."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


def smtp_delivery(url: str, **options) -> MessageDelivery:
    return MessageDelivery(SmtpSender(parse_smtp_url(url), **options), FROM)


T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
