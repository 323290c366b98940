"""The message a mail becomes: multipart/alternative, plain text first and HTML second.

Both parts are 7bit when they are ASCII with lines of at most 998 characters (a long link stays one line,
readable and clickable in a saved .eml), else quoted-printable. The Message-ID is made from the mail's
id, so a mail sent twice (a claim taken over after its lease) carries the same Message-ID both times and
the receiving side can tell.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from authsvc.store.outbox import OutgoingMail

_SMTP_LINE_LIMIT = 998  # RFC 5321 section 4.5.3.1.6, without the CRLF


def _transfer_encoding(body: str) -> str:
    if body.isascii() and all(len(line) <= _SMTP_LINE_LIMIT for line in body.splitlines()):
        return "7bit"
    return "quoted-printable"


def build_message(mail: OutgoingMail, from_address: str) -> EmailMessage:
    """The message for `mail`, from `from_address` (`no-reply@example.com` or `Name <no-reply@...>`)."""
    _, sender = parseaddr(from_address)
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at)
    message["Message-ID"] = f"<{mail.id}@{sender.rpartition('@')[2] or 'localhost'}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(mail.text_body, subtype="plain", cte=_transfer_encoding(mail.text_body))
    if mail.html_body is not None:
        message.add_alternative(mail.html_body, subtype="html", cte=_transfer_encoding(mail.html_body))
        # The boundary from the mail's own id, not from `random` (which the email package would draw from,
        # disturbing anything seeded in the same process) and unique per mail all the same.
        message.set_boundary(f"authsvc-{mail.id}")
    return message
