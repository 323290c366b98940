"""Users on every backend: round trip, unique email, missing rows, compare-and-set of the hash."""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest

from authsvc.store import AlreadyExists, NotFound, StoreUnavailable
from tests.store.conftest import new_user


async def test_a_user_reads_back_as_written_by_id_and_by_email(store):
    user = new_user("ada@example.com")
    await store.create_user(user)
    assert await store.get_user(user.id) == user
    assert await store.get_user_by_email("ada@example.com") == user


async def test_a_taken_email_is_already_exists(store):
    await store.create_user(new_user("ada@example.com"))
    with pytest.raises(AlreadyExists):
        await store.create_user(new_user("ada@example.com"))


async def test_a_taken_id_is_already_exists(store):
    user = new_user()
    await store.create_user(user)
    with pytest.raises(AlreadyExists):
        await store.create_user(dataclasses.replace(user, email="other@example.com"))


async def test_a_failed_create_leaves_the_first_user_untouched(store):
    first = new_user("ada@example.com")
    await store.create_user(first)
    with pytest.raises(AlreadyExists):
        await store.create_user(dataclasses.replace(new_user("ada@example.com"), password_hash="other"))
    assert await store.get_user_by_email("ada@example.com") == first


@pytest.mark.parametrize("lookup", ["get_user", "get_user_by_email"])
async def test_a_missing_user_is_not_found(store, lookup):
    with pytest.raises(NotFound):
        await getattr(store, lookup)("nobody@example.com")


async def test_user_timestamps_come_back_utc_aware(store):
    user = new_user()
    await store.create_user(user)
    created = (await store.get_user(user.id)).created_at
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert created.tzinfo == UTC


async def test_the_password_hash_changes_only_from_the_expected_value(store):
    user = new_user()
    await store.create_user(user)
    assert await store.rotate_password_hash(user.id, user.password_hash, "new") is True
    assert await store.rotate_password_hash(user.id, user.password_hash, "newer") is False
    assert (await store.get_user(user.id)).password_hash == "new"


async def test_the_store_answers_a_ping(store):
    await store.ping()


async def test_emails_are_compared_exactly_as_given(store):
    """Normalising (trim, lower-case) is the domain's job: the store keeps and matches the exact text."""
    lower = new_user("ada@example.com")
    await store.create_user(lower)
    upper = new_user("Ada@Example.com")
    await store.create_user(upper)
    assert await store.get_user_by_email("Ada@Example.com") == upper
    assert await store.get_user_by_email("ada@example.com") == lower


async def test_a_closed_store_is_unavailable(store):
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.get_user("someone")
