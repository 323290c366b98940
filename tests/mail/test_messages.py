"""What a recipient gets: the account mails written from their templates, as multipart messages."""

from __future__ import annotations

import email
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default

import pytest

from authsvc.mail.compose import (
    MailComposer,
    MailTemplates,
    compose_reset,
    compose_verify,
    describe_lifetime,
    reset_link,
    verify_link,
)
from authsvc.mail.messages import build_message
from tests.mail.conftest import FROM, T0

LINK = "https://auth.example.com/account/reset?token=abc-123&lang=en"


def parts_of(message: EmailMessage) -> tuple[EmailMessage, EmailMessage, EmailMessage]:
    parsed = email.message_from_bytes(message.as_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return parsed, text, html


def test_a_reset_mail_has_a_text_and_an_html_part_both_with_the_link():
    mail = compose_reset("ada@example.com", LINK, timedelta(hours=1), T0)
    parsed, text, html = parts_of(build_message(mail, FROM))

    assert parsed["From"] == FROM
    assert parsed["To"] == "ada@example.com"
    assert parsed["Subject"] == "Reset your password"
    assert parsed["Message-ID"] == f"<{mail.id}@auth.example.com>"
    assert parsed["Date"] == "Tue, 01 Dec 2026 09:00:00 +0000"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert f"\n{LINK}\n" in text.get_content()
    assert "within 1 hour" in text.get_content()
    # In HTML the link is escaped: `&` becomes `&amp;`, in the attribute and in the text.
    assert 'href="https://auth.example.com/account/reset?token=abc-123&amp;lang=en"' in html.get_content()
    assert "&lang" not in html.get_content()


def test_the_link_stays_on_one_line_in_the_raw_message_so_a_saved_mail_is_clickable():
    long_link = "https://auth.example.com/account/verify?token=" + "x" * 120
    mail = compose_verify("ada@example.com", long_link, timedelta(days=2), T0)
    raw = build_message(mail, FROM).as_bytes()
    assert long_link.encode() in raw


def test_a_verify_mail_names_the_address_and_the_lifetime_and_escapes_them_in_html():
    mail = compose_verify("o'brien@example.com", LINK, timedelta(minutes=30), T0)
    _, text, html = parts_of(build_message(mail, FROM))
    assert mail.subject == "Confirm your email address"
    assert "o'brien@example.com" in text.get_content()
    assert "o&#x27;brien@example.com" in html.get_content()
    assert "within 30 minutes" in text.get_content()


def test_a_non_ascii_body_is_sent_quoted_printable_and_reads_back_the_same(tmp_path):
    (tmp_path / "reset.txt").write_text(
        "Subject: Réinitialiser\n\nOuvrez $link (valable $lifetime), réservé à vous.\n"
    )
    templates = MailTemplates.load(tmp_path)
    mail = compose_reset("ada@example.com", LINK, timedelta(hours=2), T0, templates)
    parsed, text, _ = parts_of(build_message(mail, FROM))
    assert parsed["Subject"] == "Réinitialiser"
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content() == f"Ouvrez {LINK} (valable 2 hours), réservé à vous.\n"


def test_templates_in_a_directory_replace_the_packaged_ones_file_by_file(tmp_path):
    (tmp_path / "verify.html").write_text("<p>$email: <a href='$link'>yes</a> ($hours h, $minutes min)</p>\n")
    templates = MailTemplates.load(tmp_path)
    mail = compose_verify("ada@example.com", LINK, timedelta(minutes=90), T0, templates)
    assert mail.html_body == (
        "<p>ada@example.com: <a href='https://auth.example.com/account/reset?token=abc-123&amp;lang=en'>yes</a>"
        " (2 h, 90 min)</p>\n"
    )
    assert mail.subject == "Confirm your email address"  # verify.txt: the packaged one


@pytest.mark.parametrize(
    ("file_name", "content", "reason"),
    [
        ("reset.txt", "Subject: Hi\n\nOpen $url\n", "unknown or malformed placeholder"),
        ("reset.html", "<p>$link costs $5</p>", "unknown or malformed placeholder"),
        ("verify.txt", "Open $link\n", "must start with 'Subject: ...' and a blank line"),
    ],
)
def test_a_template_that_cannot_render_is_refused_when_loaded(tmp_path, file_name, content, reason):
    (tmp_path / file_name).write_text(content)
    with pytest.raises(ValueError, match=reason):
        MailTemplates.load(tmp_path)


def test_links_are_built_on_the_public_url_with_the_token_encoded():
    assert (
        reset_link("https://auth.example.com/", "a+b/c")
        == "https://auth.example.com/account/reset?token=a%2Bb%2Fc"
    )
    assert verify_link("http://127.0.0.1:8080", "t0k") == "http://127.0.0.1:8080/account/verify?token=t0k"
    mail = MailComposer("https://auth.example.com").reset("ada@example.com", "t0k", timedelta(hours=1), T0)
    assert "https://auth.example.com/account/reset?token=t0k" in mail.text_body
    assert mail.created_at == T0


@pytest.mark.parametrize(
    ("lifetime", "words"),
    [
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=24), "1 day"),
        (timedelta(days=7), "7 days"),
        (timedelta(minutes=15), "15 minutes"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(seconds=61), "2 minutes"),
        (timedelta(seconds=1), "1 minute"),
    ],
)
def test_a_lifetime_is_said_in_its_largest_whole_unit(lifetime, words):
    assert describe_lifetime(lifetime) == words
