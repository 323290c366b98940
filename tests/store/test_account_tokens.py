"""Reset and verification tokens on every backend: written with their mail, single use, short-lived, a newer
reset token voiding the older ones, and exactly one winner among concurrent spenders."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from authsvc.domain.retention import delete_account_tokens_expired_before
from authsvc.store import AlreadyExists, Store
from authsvc.store.interface import AccountToken
from authsvc.store.memory import MemoryStore
from authsvc.store.outbox import Outbox, OutgoingMail
from authsvc.store.outbox_sql import SqlOutbox
from authsvc.store.sql import SqlStore
from tests.store.conftest import STORE_FACTORIES, T0, Opener, new_session, new_user

LIFETIME = timedelta(minutes=30)
NEW_HASH = "$2b$04$new-hash"


def token(created_at: datetime = T0, lifetime: timedelta = LIFETIME) -> AccountToken:
    return AccountToken(os.urandom(32), created_at, created_at + lifetime)


def mail_to(recipient: str, now: datetime = T0) -> OutgoingMail:
    return OutgoingMail(recipient, "Reset your password", "Open the link\n", None, now)


def outbox_of(store: Store) -> Outbox:
    """The outbox the store queues mail in (the courier's)."""
    if isinstance(store, MemoryStore):
        return store.outbox
    assert isinstance(store, SqlStore)
    return SqlOutbox(store.runner)


async def queued(store: Store, mail: OutgoingMail) -> bool:
    return await outbox_of(store).find(mail.id) is not None


async def test_a_reset_token_for_a_known_email_is_written_with_its_mail(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    mail = mail_to(user.email)
    assert await store.create_reset_token(user.email, token(), mail) == user.id
    record = await outbox_of(store).find(mail.id)
    assert record is not None
    assert (record.mail, record.next_attempt_at, record.attempts) == (mail, mail.created_at, 0)  # due now
    assert await outbox_of(store).pending_count() == 1


async def test_an_unknown_or_disabled_email_gets_neither_token_nor_mail(store):
    disabled = new_user("off@example.com")
    await store.create_user(disabled)
    await store.set_user_disabled(disabled.email, True, T0)
    for email in ("nobody@example.com", disabled.email):
        mail, unknown = mail_to(email), token()
        assert await store.create_reset_token(email, unknown, mail) is None
        assert not await queued(store, mail)
        assert await store.reset_password(unknown.token_hash, NEW_HASH, "password_reset", T0) is None
    assert await outbox_of(store).pending_count() == 0


async def test_a_token_that_cannot_be_written_queues_no_mail(store):
    ada, grace = new_user("ada@example.com"), new_user("grace@example.com")
    for user in (ada, grace):
        await store.create_user(user)
    taken = token()
    await store.create_reset_token(ada.email, taken, mail_to(ada.email))
    mail = mail_to(grace.email)
    with pytest.raises(AlreadyExists):
        await store.create_reset_token(grace.email, taken, mail)  # the same hash: the insert fails
    assert not await queued(store, mail)


async def test_a_reset_sets_the_password_verifies_the_email_and_revokes_every_live_session(
    store, user_with_sessions
):
    user, sessions = await user_with_sessions(3)
    await store.revoke_session(sessions[0].id, "logout", T0 + timedelta(minutes=5))
    reset = token()
    await store.create_reset_token(user.email, reset, mail_to(user.email))
    now = T0 + timedelta(minutes=10)
    done = await store.reset_password(reset.token_hash, NEW_HASH, "password_reset", now)
    assert done is not None
    assert (done.user_id, done.revoked_sessions) == (user.id, 2)
    after = await store.get_user(user.id)
    assert after.password_hash == NEW_HASH
    assert after.email_verified_at == now  # the link reached the address
    assert await store.list_sessions(user.id, now) == []
    assert {(await store.get_session(s.id)).revoked_reason for s in sessions[1:]} == {"password_reset"}


async def test_a_reset_token_is_single_use(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    reset = token()
    await store.create_reset_token(user.email, reset, mail_to(user.email))
    assert await store.reset_password(reset.token_hash, NEW_HASH, "password_reset", T0) is not None
    assert await store.reset_password(reset.token_hash, "$2b$04$other", "password_reset", T0) is None
    assert (await store.get_user(user.id)).password_hash == NEW_HASH


async def test_a_token_works_until_it_expires_and_not_at_its_expiry(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    early, late = token(), token()
    await store.create_verify_token(user.id, early, mail_to(user.email))
    await store.create_verify_token(user.id, late, mail_to(user.email))
    assert await store.verify_email(early.token_hash, early.expires_at) is None
    assert await store.verify_email(late.token_hash, late.expires_at - timedelta(seconds=1)) == user.id


async def test_a_newer_reset_token_voids_the_older_ones(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    older, newer = token(), token(created_at=T0 + timedelta(minutes=1))
    await store.create_reset_token(user.email, older, mail_to(user.email))
    await store.create_reset_token(user.email, newer, mail_to(user.email))
    assert await store.reset_password(older.token_hash, NEW_HASH, "password_reset", T0) is None
    assert await store.reset_password(newer.token_hash, NEW_HASH, "password_reset", T0) is not None


async def test_a_token_of_one_kind_does_not_spend_as_the_other(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    reset, verify = token(), token()
    await store.create_reset_token(user.email, reset, mail_to(user.email))
    await store.create_verify_token(user.id, verify, mail_to(user.email))
    assert await store.verify_email(reset.token_hash, T0) is None
    assert await store.reset_password(verify.token_hash, NEW_HASH, "password_reset", T0) is None
    assert await store.verify_email(verify.token_hash, T0) == user.id
    assert await store.reset_password(reset.token_hash, NEW_HASH, "password_reset", T0) is not None


async def test_a_token_of_a_disabled_account_does_not_spend(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    reset = token()
    await store.create_reset_token(user.email, reset, mail_to(user.email))
    await store.set_user_disabled(user.email, True, T0)
    assert await store.reset_password(reset.token_hash, NEW_HASH, "password_reset", T0) is None
    await store.set_user_disabled(user.email, False, T0)
    assert await store.reset_password(reset.token_hash, NEW_HASH, "password_reset", T0) is not None


async def test_verification_marks_the_email_once_and_only_an_unverified_one_gets_a_token(
    store, user_with_sessions
):
    user, _ = await user_with_sessions(0)
    verify, mail = token(), mail_to(user.email)
    assert await store.create_verify_token(user.id, verify, mail)
    assert await queued(store, mail)
    now = T0 + timedelta(minutes=10)
    assert await store.verify_email(verify.token_hash, now) == user.id
    assert (await store.get_user(user.id)).email_verified_at == now
    assert await store.verify_email(verify.token_hash, now) is None  # single use
    again = mail_to(user.email)
    assert not await store.create_verify_token(user.id, token(), again)
    assert not await queued(store, again)
    assert not await store.create_verify_token("no-such-user", token(), mail_to(user.email))


async def test_an_earlier_verification_is_kept(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    first, second = token(), token()
    await store.create_verify_token(user.id, first, mail_to(user.email))
    await store.create_verify_token(user.id, second, mail_to(user.email))
    assert await store.verify_email(first.token_hash, T0) == user.id
    # The second link still spends (it was mailed before the first was used) but changes no date.
    assert await store.verify_email(second.token_hash, T0 + timedelta(minutes=5)) == user.id
    assert (await store.get_user(user.id)).email_verified_at == T0


async def test_of_concurrent_spenders_of_one_token_exactly_one_wins(store, user_with_sessions):
    user, _ = await user_with_sessions(2)
    reset, verify = token(), token()
    await store.create_reset_token(user.email, reset, mail_to(user.email))
    await store.create_verify_token(user.id, verify, mail_to(user.email))
    resets = await asyncio.gather(
        *(store.reset_password(reset.token_hash, f"$2b$04$hash-{n}", "password_reset", T0) for n in range(8))
    )
    verifies = await asyncio.gather(*(store.verify_email(verify.token_hash, T0) for _ in range(8)))
    [winner] = [done for done in resets if done is not None]
    assert winner.revoked_sessions == 2
    assert (await store.get_user(user.id)).password_hash == f"$2b$04$hash-{resets.index(winner)}"
    assert verifies.count(user.id) == 1
    assert verifies.count(None) == 7


async def test_of_concurrent_reset_requests_for_one_account_one_token_stays(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    tokens = [token() for _ in range(6)]
    await asyncio.gather(*(store.create_reset_token(user.email, t, mail_to(user.email)) for t in tokens))
    spent = [await store.reset_password(t.token_hash, NEW_HASH, "password_reset", T0) for t in tokens]
    assert sum(done is not None for done in spent) == 1
    assert await outbox_of(store).pending_count() == 6  # every request mailed its link


async def test_expired_tokens_are_deleted_in_batches(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    for n in range(3):
        await store.create_verify_token(
            user.id, token(lifetime=timedelta(minutes=n + 1)), mail_to(user.email)
        )
    kept = token(lifetime=timedelta(days=1))
    await store.create_verify_token(user.id, kept, mail_to(user.email))
    cutoff = T0 + timedelta(hours=1)
    assert await store.delete_account_tokens_before(cutoff, 2) == 2
    assert await store.delete_account_tokens_before(cutoff, 2) == 1
    assert await store.delete_account_tokens_before(cutoff, 2) == 0
    assert await store.verify_email(kept.token_hash, T0) == user.id


# -- ForgotPassword's timing: the SQL store runs the same statements whether or not the email exists ------


@pytest.fixture(params=("sqlite", "postgresql"))
def open_sql_store(request: pytest.FixtureRequest) -> Opener:
    return STORE_FACTORIES[request.param](request)


def _record_statements(store: SqlStore) -> list[str]:
    engine = store.runner._engine  # type: ignore[attr-defined]
    sync_engine = getattr(engine, "sync_engine", engine)
    seen: list[str] = []

    def before(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        seen.append(statement)

    event.listen(sync_engine, "before_cursor_execute", before)
    return seen


async def test_an_unknown_email_runs_the_same_statements_as_a_known_one(open_sql_store):
    async with open_sql_store() as sql_store:
        await _compare_statements(sql_store)


async def _compare_statements(sql_store: SqlStore) -> None:
    user = new_user("ada@example.com")
    await sql_store.create_user(user)
    await sql_store.create_session(new_session(user))
    statements = _record_statements(sql_store)
    assert await sql_store.create_reset_token(user.email, token(), mail_to(user.email)) == user.id
    known = list(statements)
    statements.clear()
    assert (
        await sql_store.create_reset_token("nobody@example.com", token(), mail_to("nobody@example.com"))
        is None
    )
    assert statements == known
    # One transaction: lock the user, void older tokens, insert the token, the mail, delete the decoy mail.
    assert len(known) == 5


async def test_pruning_deletes_every_expired_token_whatever_the_batch_size(store, user_with_sessions):
    user, _ = await user_with_sessions(0)
    for n in range(5):
        await store.create_verify_token(
            user.id, token(lifetime=timedelta(minutes=n + 1)), mail_to(user.email)
        )
    kept = token(lifetime=timedelta(days=1))
    await store.create_verify_token(user.id, kept, mail_to(user.email))
    assert await delete_account_tokens_expired_before(store, T0 + timedelta(hours=1), batch_size=2) == 5
    assert await store.verify_email(kept.token_hash, T0) == user.id
