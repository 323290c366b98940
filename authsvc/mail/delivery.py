"""From the outbox to a mail system: `MessageDelivery` is the courier's `MailDelivery`, turning each mail
into a message (messages.py) and handing it to a `MailSender`: SMTP (smtp.py) or files (files.py)."""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from authsvc.mail.files import FileSender
from authsvc.mail.messages import build_message
from authsvc.mail.settings import MailSettings
from authsvc.mail.smtp import SmtpSender
from authsvc.store.outbox import OutgoingMail

log = logging.getLogger("authsvc.mail")

MAIL_FOLDER = "mail"


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Return once the mail system took `message`; raise MailRejected when it refused it for good,
        anything else when it might take it later."""


class MessageDelivery:
    """The courier's `MailDelivery`: each mail as a message from `from_address`, through `sender`."""

    def __init__(self, sender: MailSender, from_address: str) -> None:
        self.sender = sender
        self._from_address = from_address

    async def deliver(self, mail: OutgoingMail) -> None:
        await self.sender.send(build_message(mail, self._from_address))


def open_delivery(
    settings: MailSettings, data_dir: Path, *, tls_context: ssl.SSLContext | None = None
) -> MessageDelivery:
    """SMTP when AUTHSVC_SMTP_URL is set, else files in `data_dir`/mail; logs which."""
    smtp = settings.smtp
    sender: MailSender
    if smtp is None:
        sender = FileSender(data_dir / MAIL_FOLDER)
        log.info("no AUTHSVC_SMTP_URL: mail is written to files", extra={"path": str(data_dir / MAIL_FOLDER)})
    else:
        sender = SmtpSender(smtp, tls_context=tls_context)
        log.info("mail goes out through SMTP", extra={"smtp_url": smtp.describe()})
    return MessageDelivery(sender, settings.from_address)
