"""The SQL operations on reset and verification tokens (table `account_tokens`), for `SqlStore`.

Each is one transaction run by the store's runner; a token and the mail carrying it are written together
(the mail row goes to `mail_outbox`, which the courier sends from), so neither exists without the other.

Spending a token is one compare-and-set UPDATE (`used_at` from NULL to now, while unexpired): on
PostgreSQL a concurrent spender waits for the row and then finds it used, on SQLite the runner's
`BEGIN IMMEDIATE` makes every transaction the only writer, so of concurrent spenders exactly one wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, delete, exists, func, select, update

from authsvc.store.interface import RESET_TOKEN, VERIFY_TOKEN, AccountToken, PasswordReset
from authsvc.store.outbox import OutgoingMail
from authsvc.store.schema import account_tokens, mail_outbox, sessions, users

_T = account_tokens
NO_USER = ""  # matches no user id (ids are UUIDs): the unknown-email path runs the same statements

# The account of an email, locked until the transaction ends, so that two requests for one account
# cannot both keep their token (the second one's DELETE waits for the first one's INSERT). FOR NO KEY
# UPDATE on PostgreSQL, so logins (whose new session's foreign key takes KEY SHARE) never wait on it;
# SQLite has no row locks and needs none (one writer at a time).
_LOCK_ENABLED_USER_BY_EMAIL = (
    select(users.c.id)
    .where(users.c.email == bindparam("email"), users.c.disabled_at.is_(None))
    .with_for_update(key_share=True)
)
DELETE_USER_TOKENS_OF_KIND = delete(_T).where(
    _T.c.user_id == bindparam("user_id"), _T.c.kind == bindparam("kind")
)
_TOKEN_VALUES = (
    bindparam("token_hash", type_=_T.c.token_hash.type),
    users.c.id,
    bindparam("kind", type_=_T.c.kind.type),
    bindparam("created_at", type_=_T.c.created_at.type),
    bindparam("expires_at", type_=_T.c.expires_at.type),
)
_TOKEN_COLUMNS = ("token_hash", "user_id", "kind", "created_at", "expires_at")
# INSERT ... SELECT: a row only when the user is there (none for NO_USER).
_INSERT_TOKEN_FOR_USER = _T.insert().from_select(
    _TOKEN_COLUMNS, select(*_TOKEN_VALUES).where(users.c.id == bindparam("user_id"))
)
_INSERT_TOKEN_FOR_UNVERIFIED_USER = (
    _T.insert()
    .from_select(
        _TOKEN_COLUMNS,
        select(*_TOKEN_VALUES).where(
            users.c.id == bindparam("user_id"),
            users.c.disabled_at.is_(None),
            users.c.email_verified_at.is_(None),
        ),
    )
    .returning(_T.c.user_id)
)
# outbox.insert_mail_statement's INSERT, built once with parameters (building it per call cost as much as
# running it): the same row, due at once, no attempt yet.
_INSERT_MAIL = mail_outbox.insert().values(
    id=bindparam("mail_id"),
    recipient=bindparam("recipient"),
    subject=bindparam("subject"),
    text_body=bindparam("text_body"),
    html_body=bindparam("html_body"),
    created_at=bindparam("mail_created_at"),
    next_attempt_at=bindparam("mail_due_at"),
    attempts=0,
)
# The decoy: for an unknown email the reset mail is written all the same, then deleted in the same
# transaction, so that both commits write (and on PostgreSQL wait for the WAL flush) alike; nobody ever
# sees the row. As the decoy bcrypt check of an unknown login (passwords.py), it costs what the real thing
# does. For a known email the DELETE matches nothing.
_DELETE_DECOY_MAIL = delete(mail_outbox).where(
    mail_outbox.c.id == bindparam("mail_id"), ~exists().where(users.c.id == bindparam("user_id"))
)
_SPEND_TOKEN = (
    update(_T)
    .where(
        _T.c.token_hash == bindparam("spent_hash"),
        _T.c.kind == bindparam("spent_kind"),
        _T.c.used_at.is_(None),
        _T.c.expires_at > bindparam("now"),
        exists().where(users.c.id == _T.c.user_id, users.c.disabled_at.is_(None)),
    )
    .values(used_at=bindparam("now"))
    .returning(_T.c.user_id)
)
_SET_PASSWORD_AFTER_RESET = (
    update(users)
    .where(users.c.id == bindparam("owner_id"))
    .values(
        password_hash=bindparam("new_hash"),
        email_verified_at=func.coalesce(users.c.email_verified_at, bindparam("now")),
    )
)
_MARK_EMAIL_VERIFIED = (
    update(users)
    .where(users.c.id == bindparam("owner_id"))
    .values(email_verified_at=func.coalesce(users.c.email_verified_at, bindparam("now")))
)
_REVOKE_ALL_LIVE_SESSIONS = (
    update(sessions)
    .where(
        sessions.c.user_id == bindparam("owner_id"),
        sessions.c.revoked_at.is_(None),
        sessions.c.expires_at > bindparam("now"),
    )
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"), revocation_room=None)
)
_DELETE_TOKENS_BEFORE = delete(_T).where(
    _T.c.token_hash.in_(
        select(_T.c.token_hash)
        .where(_T.c.expires_at < bindparam("cutoff"))
        .limit(bindparam("batch_size", type_=Integer))
        .scalar_subquery()
    )
)


def _token_params(token: AccountToken, kind: str, user_id: str) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "kind": kind,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "user_id": user_id,
    }


def _mail_params(mail: OutgoingMail) -> dict[str, Any]:
    return {
        "mail_id": mail.id,
        "recipient": mail.recipient,
        "subject": mail.subject,
        "text_body": mail.text_body,
        "html_body": mail.html_body,
        "mail_created_at": mail.created_at,
        "mail_due_at": mail.created_at,
    }


def create_reset_token(
    connection: Connection, email: str, token: AccountToken, mail: OutgoingMail
) -> str | None:
    found = connection.execute(_LOCK_ENABLED_USER_BY_EMAIL, {"email": email}).scalar_one_or_none()
    user_id = NO_USER if found is None else str(found)
    # The same five statements whether or not the account exists (NO_USER matches no row).
    connection.execute(DELETE_USER_TOKENS_OF_KIND, {"user_id": user_id, "kind": RESET_TOKEN})
    connection.execute(_INSERT_TOKEN_FOR_USER, _token_params(token, RESET_TOKEN, user_id))
    connection.execute(_INSERT_MAIL, _mail_params(mail))
    connection.execute(_DELETE_DECOY_MAIL, {"mail_id": mail.id, "user_id": user_id})
    return None if found is None else user_id


def create_verify_token(
    connection: Connection, user_id: str, token: AccountToken, mail: OutgoingMail
) -> bool:
    inserted = connection.execute(
        _INSERT_TOKEN_FOR_UNVERIFIED_USER, _token_params(token, VERIFY_TOKEN, user_id)
    ).first()
    if inserted is None:
        return False
    connection.execute(_INSERT_MAIL, _mail_params(mail))
    return True


def _spend(connection: Connection, token_hash: bytes, kind: str, now: datetime) -> str | None:
    params = {"spent_hash": token_hash, "spent_kind": kind, "now": now}
    owner = connection.execute(_SPEND_TOKEN, params).scalar_one_or_none()
    return None if owner is None else str(owner)


def reset_password(
    connection: Connection, token_hash: bytes, password_hash: str, reason: str, now: datetime
) -> PasswordReset | None:
    owner = _spend(connection, token_hash, RESET_TOKEN, now)
    if owner is None:
        return None
    connection.execute(_SET_PASSWORD_AFTER_RESET, {"owner_id": owner, "new_hash": password_hash, "now": now})
    revoked = connection.execute(_REVOKE_ALL_LIVE_SESSIONS, {"owner_id": owner, "now": now, "reason": reason})
    return PasswordReset(owner, int(revoked.rowcount))


def verify_email(connection: Connection, token_hash: bytes, now: datetime) -> str | None:
    owner = _spend(connection, token_hash, VERIFY_TOKEN, now)
    if owner is not None:
        connection.execute(_MARK_EMAIL_VERIFIED, {"owner_id": owner, "now": now})
    return owner


def delete_account_tokens_before(connection: Connection, cutoff: datetime, batch_size: int) -> int:
    params = {"cutoff": cutoff, "batch_size": batch_size}
    return int(connection.execute(_DELETE_TOKENS_BEFORE, params).rowcount)
