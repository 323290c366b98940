"""The audit trail: one structured log event per change to a session, on the `authsvc.audit` logger.

Every event carries the same members, so a log pipeline can index them without guessing: `event`,
`user_id`, `session_id`, `ip` (the client address the transport settled on) and `request_id` (the
caller's `x-request-id`), each null when unknown, plus a few event-specific counts. Never a token, a
password or a hash: callers pass ids only, and this module has no parameter that could take a secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from authsvc.domain.observe import notify

audit_log = logging.getLogger("authsvc.audit")

# The events, one per state change (and failed login, which operators watch for brute force).
REGISTER = "register"
LOGIN = "login"
LOGIN_FAILED = "login_failed"
REFRESH = "refresh"
REFRESH_GRACE = "refresh_grace"  # a replay of the parent inside the grace window: no new rotation
LOGOUT = "logout"
LOGOUT_ALL = "logout_all"
REUSE_DETECTED = "reuse_detected"
SESSION_REVOKED = "session_revoked"  # the user revoked one of their sessions (RevokeSession)
# The account lifecycle: what a user does to their account, and what operators do to accounts.
PROFILE_UPDATED = "profile_updated"
# (S105: event names, not secrets.) PASSWORD_CHANGED's `count`: the other sessions revoked.
PASSWORD_CHANGED = "password_changed"  # noqa: S105
# A wrong password at ChangePassword or DeleteAccount.
PASSWORD_CHECK_FAILED = "password_check_failed"  # noqa: S105
ACCOUNT_DELETED = "account_deleted"  # the user id stays in the log; nothing else of the account does
LOGIN_DISABLED = "login_disabled"  # the right password for a disabled account
ACCOUNT_DISABLED = "account_disabled"  # `count`: the sessions revoked
ACCOUNT_ENABLED = "account_enabled"
ROLE_CHANGED = "role_changed"
ADMIN_DENIED = "admin_denied"  # an admin RPC called by a user who is not one
# Password reset and email verification (authsvc/domain/recovery.py). S105: event names, not secrets.
PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 (user_id null: no enabled account)
PASSWORD_RESET = "password_reset"  # noqa: S105 (`count`: the sessions revoked)
RESET_TOKEN_REFUSED = "reset_token_refused"  # noqa: S105 (a wrong, used, voided or expired token)
EMAIL_VERIFICATION_REQUESTED = "email_verification_requested"  # `count`: 1 mailed, 0 already verified
EMAIL_VERIFIED = "email_verified"


# The longest text of an IP address (IPv6 with an embedded IPv4 address); the transport normalises
# addresses to at most 39 characters, and anything longer is not an address.
MAX_IP_ADDRESS = 45


@dataclass(frozen=True)
class ClientInfo:
    """Who is calling, as the transport saw it: recorded on new sessions and on every audit event.

    An `ip_address` longer than any IP address is dropped (None), so no caller of the domain can make a
    throttling key or a session row out of one.
    """

    user_agent: str | None = None
    ip_address: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.ip_address is not None and len(self.ip_address) > MAX_IP_ADDRESS:
            object.__setattr__(self, "ip_address", None)


def record(
    event: str,
    client: ClientInfo,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    count: int | None = None,
    level: int = logging.INFO,
) -> None:
    """Write one audit event, and report it to the bound observer (metrics count it)."""
    fields: dict[str, object] = {
        "event": event,
        "user_id": user_id,
        "session_id": session_id,
        "ip": client.ip_address,
        "request_id": client.request_id,
    }
    if count is not None:
        fields["count"] = count
    audit_log.log(level, event.replace("_", " "), extra=fields)
    notify(event, 1 if count is None else count)
