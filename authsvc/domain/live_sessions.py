"""The one rule for whether a token's session still stands, shared by refresh and access-token checks."""

from __future__ import annotations

from datetime import datetime

from authsvc.domain.errors import SessionRevoked, TokenExpired, TokenInvalid
from authsvc.store import NotFound, Session, SessionStore


async def load_live_session(
    store: SessionStore, session_id: str, user_id: str | None, now: datetime
) -> Session:
    """The session a token names, if it is the token owner's (when the token names one) and neither
    revoked nor expired.

    Raise TokenInvalid (no such session, or another user's), SessionRevoked, or TokenExpired.
    """
    try:
        session = await store.get_session(session_id)
    except NotFound as exc:
        raise TokenInvalid() from exc
    if user_id is not None and session.user_id != user_id:
        raise TokenInvalid()
    if session.revoked_at is not None:
        raise SessionRevoked()
    if session.expires_at <= now:
        raise TokenExpired("Session has expired")
    return session
