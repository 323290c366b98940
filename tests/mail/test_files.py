"""Without AUTHSVC_SMTP_URL mail becomes private .eml files a developer opens, and the log says where."""

from __future__ import annotations

import email
import logging
import os
import stat
from datetime import timedelta
from email.policy import default

from authsvc.domain.courier import Courier
from authsvc.logs import JsonFormatter
from authsvc.mail.compose import MailComposer
from authsvc.mail.delivery import open_delivery
from authsvc.mail.files import FileSender
from authsvc.mail.settings import MailSettings
from authsvc.mail.smtp import SmtpSender
from authsvc.store.outbox_memory import MemoryOutbox

TOKEN = "dev-token-5c1e0b"


async def test_a_mail_without_smtp_is_a_private_eml_file_named_in_the_log(tmp_path, clock, caplog):
    data_dir = tmp_path / "data"
    settings = MailSettings()
    delivery = open_delivery(settings, data_dir)
    outbox = MemoryOutbox()
    courier = Courier(outbox, delivery, clock)
    mail = MailComposer(settings.links_base).reset("ada@example.com", TOKEN, timedelta(hours=1), clock())

    previous = os.umask(0o022)  # what a shell usually gives: the files must be private all the same
    try:
        with caplog.at_level(logging.INFO, logger="authsvc.mail"):
            await courier.enqueue(mail)
            await courier.deliver_due()
    finally:
        os.umask(previous)

    folder = data_dir / "mail"
    [path] = list(folder.iterdir())
    assert path.name == f"{mail.id}.eml"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = email.message_from_bytes(path.read_bytes(), policy=default)
    assert parsed["From"] == "authsvc@localhost"
    assert parsed["To"] == "ada@example.com"
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None
    assert f"http://127.0.0.1:8080/account/reset?token={TOKEN}" in text.get_content().splitlines()
    record = await outbox.find(mail.id)
    assert record is not None and record.sent_at is not None

    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any(str(path) in line for line in lines)
    assert all(TOKEN not in line for line in lines)


async def test_a_mail_sent_twice_is_one_file(tmp_path, clock):
    sender = FileSender(tmp_path / "mail")
    delivery = open_delivery(MailSettings(), tmp_path)
    mail = MailComposer("http://127.0.0.1:8080").verify("ada@example.com", TOKEN, timedelta(days=1), clock())
    await delivery.deliver(mail)
    await delivery.deliver(mail)
    assert [path.name for path in sender.directory.iterdir()] == [f"{mail.id}.eml"]


def test_with_an_smtp_url_mail_goes_to_that_server(tmp_path, caplog):
    settings = MailSettings(
        smtp_url="smtps://ada:secret@mail.example.com",
        mail_from="no-reply@example.com",
        public_url="https://auth.example.com",
    )
    with caplog.at_level(logging.INFO, logger="authsvc.mail"):
        delivery = open_delivery(settings, tmp_path)
    assert isinstance(delivery.sender, SmtpSender)
    assert delivery.sender.config.host == "mail.example.com"
    assert not (tmp_path / "mail").exists()
    assert "secret" not in " ".join(JsonFormatter().format(r) for r in caplog.records)
