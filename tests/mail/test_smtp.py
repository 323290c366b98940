"""AUTHSVC_SMTP_URL, and sending through a real SMTP server: plain, STARTTLS, implicit TLS, with AUTH."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest

from authsvc.mail.messages import build_message
from authsvc.mail.smtp import SmtpConfig, SmtpSender, parse_smtp_url
from authsvc.store.outbox import MailRejected
from tests.mail.conftest import FROM, T0, new_mail
from tests.mail.smtp_server import Credentials, SmtpServer, Tls

PASSWORD = "p@ss:w/rd"
PASSWORD_IN_URL = "p%40ss%3Aw%2Frd"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1", SmtpConfig("127.0.0.1", 25, "plain")),
        ("smtp://localhost:1025", SmtpConfig("localhost", 1025, "plain")),
        ("smtp+starttls://mail.example.com", SmtpConfig("mail.example.com", 587, "starttls")),
        ("smtps://mail.example.com", SmtpConfig("mail.example.com", 465, "tls")),
        ("SMTPS://Mail.Example.com:2465/", SmtpConfig("mail.example.com", 2465, "tls")),
        (
            f"smtps://apikey%40example.com:{PASSWORD_IN_URL}@mail.example.com?timeout=7.5",
            SmtpConfig("mail.example.com", 465, "tls", "apikey@example.com", PASSWORD, 7.5),
        ),
        ("smtp+starttls://ada@[::1]", SmtpConfig("::1", 587, "starttls", "ada")),
        (
            f"smtp://relay:{PASSWORD_IN_URL}@127.0.0.1:2525",
            SmtpConfig("127.0.0.1", 2525, "plain", "relay", PASSWORD),
        ),
    ],
)
def test_an_smtp_url_names_host_port_security_and_decoded_credentials(url, expected):
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mail.example.com", "must start with smtp://, smtp+starttls:// or smtps://"),
        ("mail.example.com:25", "must start with"),
        ("smtp://", "names no host"),
        ("smtp://mail.example.com:99999", "port"),
        ("smtp://mail.example.com:x", "port"),
        (f"smtp://user:{PASSWORD_IN_URL}@mail.example.com", "plain text: use smtp+starttls:// or smtps://"),
        ("smtps://user:pa/ss@mail.example.com", "percent-encode"),
        ("smtps://user:pa#ss@mail.example.com", "percent-encode"),
        ("smtps://user:pa?ss@mail.example.com", "percent-encode"),
        ("smtps://mail.example.com/inbox", "no path"),
        ("smtps://mail.example.com?tls=yes", "unknown query parameter 'tls'"),
        ("smtps://mail.example.com?timeout=soon", "timeout must be a number"),
        ("smtps://mail.example.com?timeout=0", "timeout must be positive"),
        ("smtps://:secret@mail.example.com", "user name is empty"),
    ],
)
def test_an_unusable_smtp_url_is_refused_with_a_reason_that_never_shows_the_password(url, reason):
    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        parse_smtp_url(url)
    for secret in (PASSWORD_IN_URL, PASSWORD, "secret", "pa/ss", "pa#ss"):
        assert secret not in str(raised.value)


def test_the_config_as_logged_masks_the_password():
    config = parse_smtp_url(f"smtps://ada:{PASSWORD_IN_URL}@mail.example.com")
    assert config.describe() == "smtps://ada:***@mail.example.com:465"
    assert PASSWORD not in repr(config)


def message() -> EmailMessage:
    return build_message(new_mail(T0), FROM)


@pytest.fixture
def tls(tmp_path) -> Tls:
    return Tls.create(tmp_path / "pki")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtps_sends_over_tls_with_the_user_and_password_of_the_url(tls):
    credentials = Credentials("apikey@example.com", PASSWORD)
    server = SmtpServer(
        ssl_context=tls.server_context(),
        authenticator=credentials,
        auth_required=True,
        auth_require_tls=False,
    ).start()
    try:
        url = f"smtps://apikey%40example.com:{PASSWORD_IN_URL}@127.0.0.1:{server.port}"
        await SmtpSender(parse_smtp_url(url), tls_context=tls.client_context()).send(message())
    finally:
        server.stop()
    assert len(server.received) == 1
    assert credentials.seen == [b"apikey@example.com"]


async def test_smtps_refuses_a_server_whose_certificate_it_cannot_trust(tls):
    server = SmtpServer(ssl_context=tls.server_context()).start()
    try:
        sender = SmtpSender(parse_smtp_url(f"smtps://127.0.0.1:{server.port}"))  # the system's CAs only
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await sender.send(message())
    finally:
        server.stop()
    assert server.received == []


async def test_starttls_upgrades_before_authenticating(tls):
    credentials = Credentials("ada", PASSWORD)
    # aiosmtpd offers AUTH only once TLS is up (auth_require_tls), and refuses mail before it.
    server = SmtpServer(
        tls_context=tls.server_context(), require_starttls=True, authenticator=credentials, auth_required=True
    ).start()
    try:
        url = f"smtp+starttls://ada:{PASSWORD_IN_URL}@127.0.0.1:{server.port}"
        await SmtpSender(parse_smtp_url(url), tls_context=tls.client_context()).send(message())
    finally:
        server.stop()
    assert len(server.received) == 1
    assert credentials.seen == [b"ada"]


async def test_starttls_is_required_never_skipped_when_the_server_does_not_offer_it():
    server = SmtpServer().start()  # no TLS at all
    try:
        sender = SmtpSender(parse_smtp_url(f"smtp+starttls://127.0.0.1:{server.port}"))
        with pytest.raises(Exception, match=r"(?i)starttls"):
            await sender.send(message())
    finally:
        server.stop()
    assert server.received == []


async def test_plain_smtp_never_upgrades_even_when_offered(tls):
    server = SmtpServer(tls_context=tls.server_context()).start()  # offers STARTTLS, does not require it
    try:
        await SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{server.port}")).send(message())
    finally:
        server.stop()
    assert len(server.received) == 1


async def test_a_wrong_password_is_an_error_that_may_pass_not_a_refusal(tls):
    server = SmtpServer(
        tls_context=tls.server_context(),
        require_starttls=True,
        authenticator=Credentials("ada", PASSWORD),
        auth_required=True,
    ).start()
    try:
        url = f"smtp+starttls://ada:wrong@127.0.0.1:{server.port}"
        with pytest.raises(Exception) as raised:
            await SmtpSender(parse_smtp_url(url), tls_context=tls.client_context()).send(message())
    finally:
        server.stop()
    assert not isinstance(raised.value, MailRejected)  # fixing the configuration must let the mail go out
    assert server.received == []


async def test_a_recipient_refused_with_a_5xx_is_a_refusal_for_good():
    server = SmtpServer().start()
    server.handler.refuse = {"ada@example.com": "550 5.1.1 No such mailbox"}
    try:
        with pytest.raises(MailRejected, match="550"):
            await SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{server.port}")).send(message())
    finally:
        server.stop()
