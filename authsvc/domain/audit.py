"""The audit trail: one structured event per change to a session, never a secret.

Every event carries the same members, so a log pipeline can index them without guessing: `event`,
`user_id`, `session_id`, `ip` (the client address the transport settled on) and `request_id` (the
caller's `x-request-id`), each null when unknown, plus a few event-specific counts. Never a token, a
password or a hash: callers pass ids only, and this module has no parameter that could take a secret.

Inside an RPC the event rides on that RPC's one access line (transport/observing.py holds it with
`hold_for_rpc`): one line per call rather than two. Outside one (the CLI, background work) it is a line
of its own on the `authsvc.audit` logger.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
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


class RpcAudit:
    """The audit event of the RPC being served, held for its access line: the event's members
    (`request_id` aside: the access line has it) and the log level, INFO while the call recorded none.

    Made by `hold_for_rpc`; holds until `close()`.
    """

    __slots__ = ("_token", "fields", "level")

    def __init__(self) -> None:
        self.fields: dict[str, object] | None = None
        self.level = logging.INFO
        self._token: Token[RpcAudit | None] | None = _held.set(self)

    def take(self, fields: dict[str, object], level: int, request_id: str | None) -> bool:
        """Hold an event; False once closed. A second event in one call (an introspection refusal that
        also blocks the address) writes the first on a line of its own, so the lines keep their order."""
        if self._token is None:
            return False
        if self.fields is not None:
            _write(self.level, self.fields, request_id)
        self.fields = fields
        self.level = max(level, logging.INFO)
        return True

    def close(self) -> None:
        """Stop holding (in the task that called `hold_for_rpc`): an event recorded from now on, by a task
        the RPC left behind, gets a line of its own."""
        if self._token is not None:
            _held.reset(self._token)
            self._token = None


_held: ContextVar[RpcAudit | None] = ContextVar("authsvc_rpc_audit", default=None)


def hold_for_rpc() -> RpcAudit:
    """Hold the audit events recorded from now on in this task (and the tasks it starts) for the RPC's
    access line, instead of writing each on a line of its own."""
    return RpcAudit()


def record(
    event: str,
    client: ClientInfo,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    count: int | None = None,
    level: int = logging.INFO,
) -> None:
    """Record one audit event (on the RPC's access line when one holds it, else on a line of its own), and
    report it to the bound observer (metrics count it)."""
    fields: dict[str, object] = {
        "event": event,
        "user_id": user_id,
        "session_id": session_id,
        "ip": client.ip_address,
    }
    if count is not None:
        fields["count"] = count
    held = _held.get()
    if held is None or not held.take(fields, level, client.request_id):
        _write(level, fields, client.request_id)
    notify(event, 1 if count is None else count)


def _write(level: int, fields: dict[str, object], request_id: str | None) -> None:
    event = str(fields["event"])
    audit_log.log(level, event.replace("_", " "), extra={**fields, "request_id": request_id})
