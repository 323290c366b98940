"""Rotation by compare-and-set on every backend: one winner, spent tokens stay spent."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from authsvc.store import Rotation
from tests.store.conftest import DAY, T0

LATER = T0 + timedelta(minutes=5)


def rotation_of(session, new_hash: bytes | None = None, now=LATER, **fields) -> Rotation:
    values = {
        "session_id": session.id,
        "generation": session.generation,
        "token_hash": session.token_hash,
        "new_token_hash": new_hash or os.urandom(32),
        "now": now,
        "expires_at": now + 30 * DAY,
    }
    values.update(fields)
    return Rotation(**values)


async def test_a_rotation_moves_the_session_to_the_next_token(store, user_with_sessions):
    user, (session,) = await user_with_sessions(1)
    new_hash = os.urandom(32)
    rotated = await store.rotate_session(rotation_of(session, new_hash))
    assert rotated is not None
    assert (rotated.owner_email, rotated.owner_role) == (user.email, user.role)
    after = rotated.session
    assert (after.generation, after.token_hash, after.previous_token_hash) == (
        1,
        new_hash,
        session.token_hash,
    )
    assert (after.refreshed_at, after.last_used_at, after.expires_at) == (LATER, LATER, LATER + 30 * DAY)
    assert after.created_at == session.created_at
    assert await store.get_session(session.id) == after


async def test_a_spent_token_cannot_rotate_again(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    assert await store.rotate_session(rotation_of(session)) is not None
    assert await store.rotate_session(rotation_of(session)) is None
    assert (await store.get_session(session.id)).generation == 1


async def test_a_rotation_with_the_wrong_hash_or_generation_changes_nothing(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    assert await store.rotate_session(rotation_of(session, token_hash=os.urandom(32))) is None
    assert await store.rotate_session(rotation_of(session, generation=1)) is None
    assert await store.get_session(session.id) == session


async def test_revoked_and_expired_sessions_do_not_rotate(store, user_with_sessions):
    _, (revoked, expiring) = await user_with_sessions(2)
    await store.revoke_session(revoked.id, "logout", T0)
    assert await store.rotate_session(rotation_of(revoked)) is None
    assert await store.rotate_session(rotation_of(expiring, now=T0 + 31 * DAY)) is None
    assert (await store.get_session(expiring.id)).generation == 0


async def test_a_missing_session_does_not_rotate(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    assert await store.rotate_session(rotation_of(session, session_id="no-such-session")) is None


async def test_of_fifty_concurrent_rotations_of_one_token_exactly_one_wins(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    attempts = [rotation_of(session) for _ in range(50)]
    results = await asyncio.gather(*(store.rotate_session(attempt) for attempt in attempts))
    winners = [(attempt, result) for attempt, result in zip(attempts, results, strict=True) if result]
    assert len(winners) == 1
    ((winning_attempt, _),) = winners
    after = await store.get_session(session.id)
    assert (after.generation, after.token_hash) == (1, winning_attempt.new_token_hash)


async def test_concurrent_rotations_of_successive_generations_form_one_chain(store, user_with_sessions):
    """Each round races 10 rotations of the current token; every round has exactly one winner."""
    _, (session,) = await user_with_sessions(1)
    for generation in range(5):
        attempts = [rotation_of(session) for _ in range(10)]
        results = await asyncio.gather(*(store.rotate_session(attempt) for attempt in attempts))
        winners = [result for result in results if result is not None]
        assert len(winners) == 1
        session = winners[0].session
        assert session.generation == generation + 1
