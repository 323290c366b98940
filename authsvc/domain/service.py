"""The authentication service: accounts, logins, and the session lifecycle.

Sessions hold a rotating refresh token (docs/api.md, "Sessions and revocation"): a refresh spends the
presented token by compare-and-set; a replay of the immediate parent within the grace window gets the
same child back; any other spent token is reuse and revokes the whole session.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from authsvc.clock import Clock, to_epoch_seconds
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.emails import normalise_email
from authsvc.domain.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidRequest,
    RefreshTokenReused,
    SessionRevoked,
    TokenInvalid,
)
from authsvc.domain.live_sessions import load_live_session
from authsvc.domain.outage import reports_store_outage
from authsvc.domain.passwords import PasswordHasher, check_new_password
from authsvc.domain.sessions import Caller
from authsvc.domain.throttling import LoginThrottle, RegisterThrottle
from authsvc.domain.tokens import RefreshClaims, TokenCodec, token_hash
from authsvc.store import (
    AlreadyExists,
    NewSession,
    NotFound,
    Rotation,
    Session,
    Store,
    User,
    UserDisabled,
)

__all__ = ["AuthService", "Caller", "ClientInfo", "IssuedTokens", "Registered", "TokenPolicy"]

# Revocation reasons kept on the session row for audit.
REASON_LOGOUT = "logout"
REASON_LOGOUT_ALL = "logout_all"
REASON_REUSE = "reuse_detected"
DEFAULT_ROLE = "user"
MAX_USER_AGENT = 512


@dataclass(frozen=True)
class TokenPolicy:
    access_ttl: timedelta
    refresh_ttl: timedelta
    refresh_grace: timedelta


@dataclass(frozen=True)
class Registered:
    user_id: str
    email: str


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    session_id: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)


@dataclass(frozen=True)
class _Owner:
    """The claims an access token carries about its user."""

    id: str
    email: str
    role: str
    email_verified: bool


class AuthService:
    def __init__(
        self,
        store: Store,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        policy: TokenPolicy,
        clock: Clock,
        *,
        throttle: LoginThrottle | None = None,
        register_throttle: RegisterThrottle | None = None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._tokens = tokens
        self._policy = policy
        self._clock = clock
        self._throttle = throttle or LoginThrottle.off(clock)
        self._register_throttle = register_throttle or RegisterThrottle.off(clock)

    @reports_store_outage
    async def register(self, email: str, password: str, client: ClientInfo) -> Registered:
        """Create an account. Raise InvalidEmail, WeakPassword, PasswordTooLong, Throttled or EmailTaken.

        A valid request is counted before any bcrypt work (a throttled one costs none), and the password
        is hashed before the email is checked for duplicates, so a taken email and a new one cost the same.
        """
        normalised = normalise_email(email)
        encoded = check_new_password(password)
        await self._register_throttle.begin_attempt(client)
        password_hash = await self._hasher.hash(encoded)
        user = User(str(uuid.uuid4()), normalised, password_hash, DEFAULT_ROLE, self._clock())
        try:
            await self._store.create_user(user)
        except AlreadyExists as exc:
            raise EmailTaken() from exc
        audit.record(audit.REGISTER, client, user_id=user.id)
        return Registered(user.id, normalised)

    @reports_store_outage
    async def login(self, email: str, password: str, client: ClientInfo) -> IssuedTokens:
        """Check the password and open a session. Unknown email and wrong password both raise
        InvalidCredentials, after the same bcrypt work."""
        normalised = normalise_email(email)
        if not password:
            raise InvalidRequest("Password is required")
        # Counted before any bcrypt work (raises Throttled); a failure below leaves the attempt counted.
        attempt = await self._throttle.begin_attempt(normalised, client)
        try:
            user: User | None = await self._store.get_user_by_email(normalised)
        except NotFound:
            user = None
        matched = await self._hasher.verify(password, None if user is None else user.password_hash)
        if user is None or not matched:
            audit.record(audit.LOGIN_FAILED, client, level=logging.WARNING)
            raise InvalidCredentials()
        # The password was right, so this is no failed attempt, whatever follows.
        await self._throttle.record_success(attempt)
        # Only now is a disabled account told apart: answering ACCOUNT_DISABLED before the password
        # checked out would tell anyone holding a list of emails which accounts exist and are disabled.
        if user.disabled:
            self._refuse_disabled(user.id, client)
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(password.encode("utf-8"))
            await self._store.rotate_password_hash(user.id, user.password_hash, new_hash)
        now = self._clock()
        session_id = str(uuid.uuid4())
        expires_at = now + self._policy.refresh_ttl
        refresh_token = self._tokens.mint_refresh(session_id, 0)
        user_agent = client.user_agent[:MAX_USER_AGENT] if client.user_agent else None
        session = NewSession(
            session_id, user.id, token_hash(refresh_token), now, expires_at, user_agent, client.ip_address
        )
        try:
            await self._store.create_session(session)
        except NotFound as exc:  # the account was deleted between the password check and now
            raise InvalidCredentials() from exc
        except UserDisabled:  # disabled since the row was read: the store decided atomically
            self._refuse_disabled(user.id, client)
        audit.record(audit.LOGIN, client, user_id=user.id, session_id=session_id)
        return self._issue(user, session_id, refresh_token, expires_at, now)

    @reports_store_outage
    async def refresh(self, refresh_token: str, client: ClientInfo) -> IssuedTokens:
        """Spend `refresh_token` and return a new pair for the same session.

        Raise TokenInvalid, TokenExpired, SessionRevoked, or RefreshTokenReused (after revoking the session).
        """
        now = self._clock()
        claims = self._tokens.read_refresh(refresh_token, now)
        presented = token_hash(refresh_token)
        expires_at = now + self._policy.refresh_ttl
        child = self._tokens.mint_refresh(claims.session_id, claims.generation + 1)
        rotation = Rotation(
            claims.session_id, claims.generation, presented, token_hash(child), now, expires_at
        )
        rotated = await self._store.rotate_session(rotation)
        if rotated is not None:
            user_id = rotated.session.user_id
            audit.record(audit.REFRESH, client, user_id=user_id, session_id=claims.session_id)
            owner = _Owner(user_id, rotated.owner_email, rotated.owner_role, rotated.owner_email_verified)
            return self._issue(owner, claims.session_id, child, expires_at, now)
        # Lost the compare-and-set: a concurrent refresh, a replay, or a dead session.
        session = await self._spent_token_session(claims, presented, now, client)
        replayed = self._tokens.mint_refresh(session.id, session.generation)
        if not hmac.compare_digest(token_hash(replayed), session.token_hash):
            raise TokenInvalid()  # minted under a refresh-token secret that has since been replaced
        user = await self._get_owner(session)
        audit.record(audit.REFRESH_GRACE, client, user_id=session.user_id, session_id=session.id)
        return self._issue(user, session.id, replayed, session.expires_at, now)

    @reports_store_outage
    async def logout(self, refresh_token: str, client: ClientInfo) -> None:
        """Revoke the session of `refresh_token`. Raise as `refresh` does when the token is not current."""
        now = self._clock()
        claims = self._tokens.read_refresh(refresh_token, now)
        presented = token_hash(refresh_token)
        owner = await self._store.revoke_session(claims.session_id, REASON_LOGOUT, now, token_hash=presented)
        if owner is not None:
            audit.record(audit.LOGOUT, client, user_id=owner, session_id=claims.session_id)
            return
        # Not the current token; the parent within the grace window (the client lost a refresh answer)
        # may still end its session.
        try:
            session = await self._spent_token_session(claims, presented, now, client)
        except SessionRevoked:
            if await self._logged_out_with(claims.session_id, presented):
                return  # a repeat of a logout that took effect (its answer was lost): the same answer
            raise
        if await self._store.revoke_session(session.id, REASON_LOGOUT, now) is None:
            raise SessionRevoked()
        audit.record(audit.LOGOUT, client, user_id=session.user_id, session_id=claims.session_id)

    async def _logged_out_with(self, session_id: str, presented: bytes) -> bool:
        """Whether a Logout presenting this token (the current one, or the parent in the grace window)
        ended the session: Logout is retry-safe (authsvc.v1.retry_safe), so its repeat answers OK."""
        try:
            session = await self._store.get_session(session_id)
        except NotFound:
            return False
        hashes = (session.token_hash, session.previous_token_hash)
        return session.revoked_reason == REASON_LOGOUT and any(
            known is not None and hmac.compare_digest(known, presented) for known in hashes
        )

    @reports_store_outage
    async def logout_all(self, caller: Caller, client: ClientInfo) -> int:
        """Revoke every live session of the caller in one statement; return how many."""
        count = await self._store.revoke_all_sessions(caller.user_id, REASON_LOGOUT_ALL, self._clock())
        audit.record(
            audit.LOGOUT_ALL, client, user_id=caller.user_id, session_id=caller.session_id, count=count
        )
        return count

    async def _spent_token_session(
        self, claims: RefreshClaims, presented: bytes, now: datetime, client: ClientInfo
    ) -> Session:
        """Judge a refresh token that is not its session's current one.

        Return the session when the token is the immediate parent within the grace window; otherwise
        raise: TokenInvalid, SessionRevoked, TokenExpired, or RefreshTokenReused after revoking.
        """
        session = await load_live_session(self._store, claims.session_id, claims.user_id, now)
        grace = self._policy.refresh_grace
        is_parent = (
            session.generation == claims.generation + 1
            and session.previous_token_hash is not None
            and hmac.compare_digest(session.previous_token_hash, presented)
        )
        if is_parent and grace > timedelta(0) and now - session.refreshed_at <= grace:
            return session
        if session.generation > claims.generation:
            await self._store.revoke_session(session.id, REASON_REUSE, now)
            audit.record(
                audit.REUSE_DETECTED,
                client,
                user_id=session.user_id,
                session_id=session.id,
                level=logging.WARNING,
            )
            raise RefreshTokenReused()
        raise TokenInvalid()

    @staticmethod
    def _refuse_disabled(user_id: str, client: ClientInfo) -> NoReturn:
        audit.record(audit.LOGIN_DISABLED, client, user_id=user_id, level=logging.WARNING)
        raise AccountDisabled()

    async def _get_owner(self, session: Session) -> User:
        try:
            return await self._store.get_user(session.user_id)
        except NotFound as exc:
            raise TokenInvalid() from exc

    def _issue(
        self, user: User | _Owner, session_id: str, refresh_token: str, expires_at: datetime, now: datetime
    ) -> IssuedTokens:
        access_token = self._tokens.mint_access(
            user_id=user.id,
            session_id=session_id,
            email=user.email,
            role=user.role,
            email_verified=user.email_verified,
            now=now,
            ttl=self._policy.access_ttl,
        )
        return IssuedTokens(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=int(self._policy.access_ttl.total_seconds()),
            refresh_expires_in=max(0, to_epoch_seconds(expires_at) - to_epoch_seconds(now)),
            session_id=session_id,
        )
