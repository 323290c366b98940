"""Preparation for `make bench`: users and sessions written through the store directly.

Logging in thousands of sessions at bcrypt cost 12 would take minutes, so sessions are created with the
same store and token code the server uses, before the server starts.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
from sqlalchemy import Engine, event

from authsvc.domain.keys import KeyRing
from authsvc.domain.tokens import TokenCodec, token_hash
from authsvc.store import NewSession, User
from authsvc.store.key_files import load_or_create_keys, load_refresh_secret
from authsvc.store.migrate import migrate
from authsvc.store.sql import SqlStore, open_store

PASSWORD = "bench password 1"
ISSUER = AUDIENCE = "authsvc"


@dataclass
class Plan:
    seconds: float
    login_seconds: float
    concurrency: int  # gRPC calls in flight, as the issue's reflection client ran them
    rest_concurrency: int  # HTTP clients, as the peer benchmark ran them
    login_concurrency: int
    logout_sessions: int
    logout_all_sizes: tuple[int, ...]  # the last one is the targets' size, over gRPC and REST
    users: int


# Logout pools: a scenario that empties its pool ends early, its rate still right; 12,000 lasts 5 s at
# 2,400 logouts/s, past the targets, and keeps the preparation (one insert per session) short.
FULL = Plan(5.0, 10.0, 64, 16, 16, 12_000, (1, 100, 1_000, 10_000), 16)
QUICK = Plan(0.5, 1.0, 8, 4, 4, 300, (1, 10), 2)


class Prepared:
    def __init__(self) -> None:
        self.credentials: list[tuple[str, str]] = []
        self.pools: dict[str, list[str]] = {}
        self.logout_all: dict[int, str] = {}
        self.rest_logout_all: dict[int, str] = {}
        self.statements: dict[int, int] = {}


async def _sessions(store: SqlStore, codec: TokenCodec, user_id: str, count: int) -> list[tuple[str, str]]:
    now = datetime.now(UTC)
    expires = now + timedelta(days=30)
    pairs = []
    for _ in range(count):
        sid = str(uuid.uuid4())
        token = codec.mint_refresh(sid, 0)
        pairs.append((sid, token))
    # In slices: a pool of a few connections would time out callers queued behind thousands of inserts.
    for start in range(0, len(pairs), 64):
        await asyncio.gather(
            *(
                store.create_session(
                    NewSession(sid, user_id, token_hash(t), now, expires, "bench", "127.0.0.1")
                )
                for sid, t in pairs[start : start + 64]
            )
        )
    return pairs


async def _user(store: SqlStore, password_hash: str) -> User:
    user = User(
        str(uuid.uuid4()),
        f"bench-{uuid.uuid4().hex[:12]}@example.com",
        password_hash,
        "user",
        datetime.now(UTC),
    )
    await store.create_user(user)
    return user


async def prepare(database_url: str, keys_dir: Path, plan: Plan, rounds: int) -> Prepared:
    await migrate(database_url)
    keys = KeyRing.from_files(load_or_create_keys(keys_dir, datetime.now(UTC)))
    codec = TokenCodec(keys, load_refresh_secret(keys_dir), ISSUER, AUDIENCE)
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode()
    prepared = Prepared()
    store = await open_store(database_url)
    try:
        for _ in range(plan.users):
            prepared.credentials.append(((await _user(store, password_hash)).email, PASSWORD))
        worker = await _user(store, password_hash)
        for pool, count in {
            "refresh": plan.concurrency,
            "refresh_1": 1,
            "logout": plan.logout_sessions,
            "mixed": plan.concurrency + plan.logout_sessions // 20,
            "under_load": 4,
            "rest_refresh": plan.rest_concurrency,
            "rest_logout": plan.logout_sessions,
            "latency_pair": 2,
            "workers_refresh_1": plan.concurrency,
            "workers_refresh_n": plan.concurrency,
            "workers_warm": 16,
        }.items():
            prepared.pools[pool] = [token for _, token in await _sessions(store, codec, worker.id, count)]
        for size in plan.logout_all_sizes:
            prepared.logout_all[size] = await _owner_of(store, codec, password_hash, size)
        largest = plan.logout_all_sizes[-1]
        prepared.rest_logout_all[largest] = await _owner_of(store, codec, password_hash, largest)
        prepared.statements = await _count_logout_all_statements(store, codec, password_hash, plan)
    finally:
        await store.close()
    return prepared


async def _owner_of(store: SqlStore, codec: TokenCodec, password_hash: str, sessions: int) -> str:
    """A new user with `sessions` live sessions: an access token of one of them."""
    owner = await _user(store, password_hash)
    sid, _ = (await _sessions(store, codec, owner.id, sessions))[0]
    return codec.mint_access(
        user_id=owner.id,
        session_id=sid,
        email=owner.email,
        role="user",
        email_verified=False,
        now=datetime.now(UTC),
        ttl=timedelta(hours=1),
    )


async def _count_logout_all_statements(
    store: SqlStore, codec: TokenCodec, password_hash: str, plan: Plan
) -> dict[int, int]:
    """Statements the store runs through SQLAlchemy to revoke all of one user's sessions, by number of
    sessions (0 when it runs them on the raw driver, where no SQLAlchemy event sees them)."""
    counts: dict[int, int] = {}
    seen: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("SELECT", "UPDATE", "INSERT", "DELETE"):
            seen.append(statement)

    for size in (plan.logout_all_sizes[0], plan.logout_all_sizes[-1]):
        if counts and not any(counts.values()):
            break  # the raw driver: nothing to count, and no need to prepare 10,000 more sessions
        owner = await _user(store, password_hash)
        await _sessions(store, codec, owner.id, size)
        seen.clear()
        event.listen(Engine, "before_cursor_execute", _count)
        try:
            revoked = await store.revoke_all_sessions(owner.id, "bench", datetime.now(UTC))
        finally:
            event.remove(Engine, "before_cursor_execute", _count)
        assert revoked == size, (revoked, size)
        counts[size] = len(seen)
    return counts
