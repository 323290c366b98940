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
