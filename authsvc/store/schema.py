"""Tables, as SQLAlchemy Core metadata shared by the store and the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every dialect.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are stored as naive UTC in one
    fixed format (which also makes SQLite's text comparison order them correctly).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: pass UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(128), nullable=False),
    Column("role", String(32), nullable=False, server_default="user"),
    Column("created_at", UtcDateTime(), nullable=False),
    # The account lifecycle (migration 0005): what the user calls themself, when they proved the email
    # theirs, and when an operator shut the account off (NULL: never, or enabled again).
    Column("display_name", String(100), nullable=False, server_default=""),
    Column("email_verified_at", UtcDateTime(), nullable=True),
    Column("disabled_at", UtcDateTime(), nullable=True),
)

# Password-reset and email-verification tokens (migration 0005), sent by mail: stored only as SHA-256,
# single use (`used_at`), short-lived (`expires_at`). The user's row cascades them away.
account_tokens = Table(
    "account_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # "reset" or "verify"
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
)
# A newer reset token voids the user's older ones: found by (user_id, kind).
Index("ix_account_tokens_user_kind", account_tokens.c.user_id, account_tokens.c.kind)

# What `revocation_room` holds from creation to revocation on SQLite: `revoked_at` (26 characters) and a
# revocation reason of up to 16 fit in it.
REVOCATION_ROOM = bytes(42)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("generation", Integer, nullable=False, server_default="0"),
    # SHA-256 of the current refresh token, and of the one it replaced (for the grace window).
    Column("token_hash", LargeBinary(32), nullable=False),
    Column("previous_token_hash", LargeBinary(32), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("refreshed_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("ip_address", String(64), nullable=True),
    # SQLite only (migration 0006): bytes a session is created with and gives back when it is revoked, so
    # that writing `revoked_at` and `revoked_reason` does not grow the row. A grown row no longer fits its
    # page: revoking 10,000 sessions then split pages throughout, a third of LogoutAll's time. (PostgreSQL
    # writes a new row version anyway and gets its room from the table's fillfactor instead.)
    Column("revocation_room", LargeBinary(), nullable=True),
)

# LogoutAll and ListSessions find a user's sessions by user_id (the foreign key's cascade needs it too).
# No partial index of live sessions: revoking moves every row out of it, which tripled the cost of the
# UPDATE that revokes 10,000 sessions (migration 0003). No index on expires_at either (migration 0006):
# every refresh moved its session in it, and pruning never used it (its `expires_at < ? OR revoked_at < ?`
# scans the table on both databases). The columns refresh and revocation write are in no index, so on
# PostgreSQL both are HOT updates.
Index("ix_sessions_user_id", sessions.c.user_id)

# Throttling (throttle.py): one fixed-window counter per throttled key (an account at an address, an
# address, an account, registrations), and the marks of addresses known for an account (`attempts` 0).
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("subject", String(400), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("window_ends_at", UtcDateTime(), nullable=False),
)

# Mail waiting to be sent (outbox.py): written in the same transaction as the token it carries, sent by the
# courier (authsvc/domain/courier.py) of whichever replica claims it first. A claimed row carries its
# claimer's `claim_id` until `claimed_until`; a sent or abandoned row keeps no body (the body holds a link
# with a token), and `last_error` is the mail server's short answer, never a body.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(998), nullable=False),
    Column("text_body", Text(), nullable=False),
    Column("html_body", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # NULL once sent or abandoned: no claim ever matches it again.
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_until", UtcDateTime(), nullable=True),
    Column("claim_id", String(36), nullable=True),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("last_error", String(200), nullable=True),
)

# The claim query walks the mails still to send by due time: rows leave the index when sent, so it stays
# as small as the queue, however long sent rows are kept.
Index(
    "ix_mail_outbox_due",
    mail_outbox.c.next_attempt_at,
    sqlite_where=mail_outbox.c.next_attempt_at.is_not(None),
    postgresql_where=mail_outbox.c.next_attempt_at.is_not(None),
)
