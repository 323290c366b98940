"""Where the attempt counters of a throttling test live: the server's database ("sql") or a Redis.

Redis is the one at 127.0.0.1:6379; each test gets its own key prefix, deleted at the end. Unreachable
Redis skips the test, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
import redis.asyncio as redis
from redis import exceptions as redis_errors

from authsvc.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
# On Redis these server tests are marked `slow` (`make test-fast` runs them with the SQL counters only); the
# attempt-store conformance suite (tests/store/test_attempt_store.py) still checks Redis in every run.
BACKENDS = ("sql", pytest.param("redis", marks=pytest.mark.slow))


@asynccontextmanager
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on the test Redis; every key under it is deleted on the way out."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis_errors.ConnectionError) as error:
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} must be reachable under CI=true: {error}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {error}")
    prefix = f"authsvc-test:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@asynccontextmanager
async def counters_in(backend: str, settings: Settings) -> AsyncIterator[Settings]:
    """`settings` with the counters in `backend` ("sql": as they are; "redis": a fresh prefix)."""
    if backend == "sql":
        yield settings
        return
    async with redis_prefix() as prefix:
        yield replace(settings, redis_url=REDIS_URL, redis_key_prefix=prefix)
