"""Email addresses: validated by email-validator's syntax rules and normalised for comparison."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from authsvc.domain.errors import InvalidEmail

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path, less the angle brackets


def normalise_email(raw: str) -> str:
    """Trim, validate and lower-case an address; raise InvalidEmail with a human reason when it is not one.

    The whole address is lower-cased: docs/api.md compares emails case-insensitively, local part included.
    """
    candidate = raw.strip()
    if not candidate:
        raise InvalidEmail("Email is required")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"Email must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"Email address is not valid: {exc}") from exc
    return checked.normalized.lower()
