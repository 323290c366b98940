"""A real SMTP server in the test process: aiosmtpd's Controller (its own thread and loop) on a loopback
port, keeping every message it accepts."""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.ops.certs import Authority
from tests.ports import free_port


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class CollectingHandler:
    """Accepts every message (recipients in `refuse` get that answer instead) and keeps it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse: dict[str, str] = {}
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        with self._lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


class HeldHandler(CollectingHandler):
    """Holds each message's DATA until the test lets it through (`release`): a send in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.released = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.arrived.set()
        await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 30)
        return await super().handle_DATA(server, session, envelope)


class Credentials:
    """An aiosmtpd authenticator that knows one user."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()
        self.seen: list[bytes] = []

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any):
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.seen.append(data.login)
        # handled=False: aiosmtpd answers itself (235, or 535 on a wrong password).
        return AuthResult(success=data.login == self.user and data.password == self.password, handled=False)


@dataclass
class Tls:
    """A CA and a server certificate for 127.0.0.1, with the contexts each side needs."""

    ca: Authority
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> Tls:
        ca = Authority("authsvc mail test CA")
        cert_file, key_file = ca.server().write(directory, "smtp")
        return cls(ca, ca.write(directory / "ca.pem"), cert_file, key_file)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a client that trusts this CA uses (the system's CAs do not know it)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


class SmtpServer:
    """An SMTP server on `port` (a free one by default), started and stopped by the test."""

    def __init__(self, port: int | None = None, handler: CollectingHandler | None = None, **options: Any):
        self.port = port or free_port()
        self.handler = handler or CollectingHandler()
        self._options = options
        self._controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def start(self) -> SmtpServer:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self._options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int, seconds: float = 10.0) -> list[Received]:
        """The messages once `count` have arrived (a bound, not a measurement: fails after `seconds`)."""
        async with asyncio.timeout(seconds):
            while len(self.handler.received) < count:
                await asyncio.sleep(0.01)
        return self.received
