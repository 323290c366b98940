"""The one rule for whether a token's session still stands, shared by refresh and access-token checks."""

from __future__ import annotations

from datetime import datetime

from authsvc.domain.errors import SessionRevoked, TokenExpired, TokenInvalid
from authsvc.store import NotFound, Session, SessionStore


def _judge(owner_id: str, revoked: bool, expired: bool, user_id: str | None) -> None:
    if user_id is not None and owner_id != user_id:
        raise TokenInvalid()
    if revoked:
        raise SessionRevoked()
    if expired:
        raise TokenExpired("Session has expired")


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
    _judge(session.user_id, session.revoked_at is not None, session.expires_at <= now, user_id)
    return session


async def check_live_session(
    store: SessionStore, session_id: str, user_id: str | None, now: datetime
) -> None:
    """`load_live_session`'s check without the session: what every authenticated call needs, read with the
    store's narrower `session_standing` (three columns, no row to build)."""
    try:
        standing = await store.session_standing(session_id, now)
    except NotFound as exc:
        raise TokenInvalid() from exc
    _judge(standing.user_id, standing.revoked, standing.expired, user_id)
