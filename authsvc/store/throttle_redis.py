"""`AttemptStore` on Redis (AUTHSVC_REDIS_URL): the same fixed windows and marks as the SQL store, kept
in hashes.

Each counter is a hash `{prefix}{key}` with `attempts` and `ends` (the window's end, in milliseconds of
the caller's clock, so tests that move the clock see windows end). Taking an attempt is one Lua script,
which Redis runs atomically, so replicas sharing one Redis cannot both slip under a limit. A mark is a
hash with `ends` only. Each hash also gets a Redis TTL of its remaining time, which only cleans up; the
decisions always read `ends`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as redis
from redis import exceptions as redis_errors

from authsvc.clock import EPOCH
from authsvc.store.interface import StoreUnavailable
from authsvc.store.throttle import AttemptLimit

# KEYS: the counters; ARGV: now (ms), then a limit and a window (ms) per key.
# Returns 0 when the attempt was taken, else the end (ms) of the last full window.
_CREATE_ATTEMPT = """
local now = tonumber(ARGV[1])
local refused_until = 0
local counts = {}
local ends = {}
for i, key in ipairs(KEYS) do
  local stored = redis.call('HMGET', key, 'attempts', 'ends')
  local count = tonumber(stored[1])
  local ending = tonumber(stored[2])
  if count == nil or ending == nil or ending <= now then
    count = 0
    ending = now + tonumber(ARGV[2 * i + 1])
  end
  counts[i] = count
  ends[i] = ending
  if count >= tonumber(ARGV[2 * i]) and ending > refused_until then
    refused_until = ending
  end
end
if refused_until > 0 then
  return refused_until
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'attempts', counts[i] + 1, 'ends', ends[i])
  redis.call('PEXPIRE', key, ends[i] - now)
end
return 0
"""

# KEYS: the counters; ARGV[1]: now (ms). Gives back one attempt of each live window.
_DELETE_ATTEMPT = """
for _, key in ipairs(KEYS) do
  local stored = redis.call('HMGET', key, 'attempts', 'ends')
  local count = tonumber(stored[1])
  local ending = tonumber(stored[2])
  if count ~= nil and ending ~= nil and ending > tonumber(ARGV[1]) and count > 0 then
    redis.call('HINCRBY', key, 'attempts', -1)
  end
end
return 0
"""

# KEYS[1]: the mark; ARGV: its end (ms), and its lifetime (ms, at least 1) for the TTL.
_CREATE_MARK = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'ends', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""


def _millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


@contextmanager
def _converted_errors() -> Iterator[None]:
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        raise StoreUnavailable("the attempt counters (Redis) cannot be reached") from exc
    except redis_errors.RedisError as exc:
        raise StoreUnavailable("the attempt counters (Redis) failed") from exc


class RedisAttemptStore:
    """See throttle.py's `AttemptStore` for the contract; `prefix` namespaces every key."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._create = client.register_script(_CREATE_ATTEMPT)
        self._delete = client.register_script(_DELETE_ATTEMPT)
        self._mark = client.register_script(_CREATE_MARK)

    @classmethod
    def from_url(cls, url: str, prefix: str, timeout_seconds: float) -> RedisAttemptStore:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        return cls(client, prefix)

    async def create_attempt(self, limits: Sequence[AttemptLimit], now: datetime) -> datetime | None:
        keys = [self._prefix + limit.key for limit in limits]
        args: list[Any] = [_millis(now)]
        for limit in limits:
            args += [limit.limit, _millis(now + limit.window) - _millis(now)]
        with _converted_errors():
            refused_until = int(await self._create(keys=keys, args=args))
        if refused_until == 0:
            return None
        return datetime.fromtimestamp(refused_until / 1000, UTC)

    async def delete_attempt(self, keys: Sequence[str], now: datetime) -> None:
        if not keys:
            return
        with _converted_errors():
            await self._delete(keys=[self._prefix + key for key in keys], args=[_millis(now)])

    async def delete_attempts(self, key: str) -> None:
        with _converted_errors():
            await self._client.delete(self._prefix + key)

    async def create_mark(self, key: str, now: datetime, lifetime: timedelta) -> None:
        ends = _millis(now + lifetime)
        with _converted_errors():
            await self._mark(keys=[self._prefix + key], args=[ends, max(1, ends - _millis(now))])

    async def has_mark(self, key: str, now: datetime) -> bool:
        with _converted_errors():
            ends = await self._client.hget(self._prefix + key, "ends")
        return ends is not None and int(ends) > _millis(now)

    async def ping(self) -> None:
        with _converted_errors():
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
