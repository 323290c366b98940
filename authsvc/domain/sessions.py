"""Access-token callers and their sessions: who a token names, their devices, revoking one, introspection.

Every check here reads the session row from the store on each call, with no cache, so a revocation on
any replica is seen by every replica's next call (docs/api.md, "Sessions and revocation").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import (
    AuthError,
    InvalidRequest,
    ServiceUnavailable,
    SessionNotFound,
)
from authsvc.domain.introspection_guard import IntrospectionGuard
from authsvc.domain.keys import PublicJwk
from authsvc.domain.live_sessions import check_live_session
from authsvc.domain.outage import reports_store_outage
from authsvc.domain.tokens import TokenCodec
from authsvc.store import Store

REASON_BY_USER = "revoked_by_user"
MAX_SESSION_ID = 64  # ids are 36-character UUIDs; longer ones cannot exist, so skip the query


@dataclass(frozen=True)
class Caller:
    """The user behind a checked access token whose session is live."""

    user_id: str
    session_id: str
    email: str
    role: str
    expires_at: int  # the access token's `exp`, seconds since the epoch
    email_verified: bool = False  # the token's claim: as the user's row said when it was minted


@dataclass(frozen=True)
class SessionSummary:
    """One of the caller's live sessions, as ListSessions shows it."""

    session_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    current: bool


class SessionService:
    def __init__(
        self, store: Store, tokens: TokenCodec, clock: Clock, introspection: IntrospectionGuard | None = None
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._introspection = introspection or IntrospectionGuard.unthrottled(None, clock)

    @reports_store_outage
    async def authenticate(self, access_token: str) -> Caller:
        """The caller behind an access token whose session is still live at this moment.

        Raise TokenInvalid, TokenExpired, TokenTooLong or SessionRevoked.
        """
        now = self._clock()
        claims = self._tokens.read_access(access_token, now)
        await check_live_session(self._store, claims.session_id, claims.user_id, now)
        return Caller(
            claims.user_id,
            claims.session_id,
            claims.email,
            claims.role,
            claims.expires_at,
            claims.email_verified,
        )

    @reports_store_outage
    async def introspect(self, token: str, presented_secret: str | None, client: ClientInfo) -> Caller | None:
        """RFC 7662: the caller an active access token names, or None for anything not active.

        The caller is admitted first (introspection_guard.py; RFC 7662 section 2.1 asks that the endpoint
        authenticate its callers): with a secret configured, `presented_secret` must equal it, else
        NotAuthenticated, or Throttled after too many failures from the client's address; with none,
        only local callers are answered, else IntrospectionLoopbackOnly. Apart from that only a store
        outage raises (ServiceUnavailable): inactive must mean the token is not good, never that the
        service could not tell.
        """
        await self._introspection.admit(presented_secret, client)
        try:
            return await self.authenticate(token)
        except ServiceUnavailable:
            raise
        except AuthError:
            return None

    @reports_store_outage
    async def list_sessions(self, caller: Caller) -> list[SessionSummary]:
        """The caller's live sessions, newest first, with the caller's own marked `current`."""
        found = await self._store.list_sessions(caller.user_id, self._clock())
        return [
            SessionSummary(
                session_id=session.id,
                created_at=session.created_at,
                last_used_at=session.last_used_at,
                expires_at=session.expires_at,
                user_agent=session.user_agent,
                ip_address=session.ip_address,
                current=session.id == caller.session_id,
            )
            for session in found
        ]

    @reports_store_outage
    async def revoke_session(self, caller: Caller, session_id: str, client: ClientInfo) -> None:
        """Revoke one of the caller's own live sessions.

        Raise SessionNotFound alike for another user's session, a missing one and one already revoked or
        expired, so that session ids of other users cannot be probed.
        """
        if not session_id:
            raise InvalidRequest("session_id is required")
        if len(session_id) > MAX_SESSION_ID or not await self._store.revoke_user_session(
            caller.user_id, session_id, REASON_BY_USER, self._clock()
        ):
            raise SessionNotFound()
        audit.record(audit.SESSION_REVOKED, client, user_id=caller.user_id, session_id=session_id)

    def published_keys(self) -> list[PublicJwk]:
        """Every public key in the ring, as RFC 7517 members."""
        return self._tokens.published_keys()
