"""Mail as files, for development without a mail server: each message becomes `<dir>/<id>.eml`.

A developer opens the file (any mail client reads .eml; the link is on a line of its own in the text) to
follow the link; the log says where each one went. The folder is 0700 and each file 0600: a file holds a
live token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

log = logging.getLogger("authsvc.mail")

_SAFE_ID = re.compile(r"<([A-Za-z0-9-]{1,64})@")


def _file_stem(message: EmailMessage) -> str:
    """The mail's id, from its Message-ID (authsvc/mail/messages.py), so a mail sent twice is one file."""
    matched = _SAFE_ID.match(str(message.get("Message-ID", "")))
    return matched[1] if matched else str(uuid.uuid4())


class FileSender:
    """A `MailSender` that writes each message to `directory` (created 0700 when missing)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        return self._directory

    async def send(self, message: EmailMessage) -> None:
        path = await asyncio.to_thread(self._write, message)
        log.info("mail written to a file: open it to follow its link", extra={"path": str(path)})

    def _write(self, message: EmailMessage) -> Path:
        if not self._directory.is_dir():
            self._directory.mkdir(parents=True, exist_ok=True)
            self._directory.chmod(0o700)  # mkdir's mode is cut by the umask: set it as meant
        path = self._directory / f"{_file_stem(message)}.eml"
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        # Written aside and renamed: a reader never sees half a mail.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(message.as_bytes(policy=SMTP))
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path
