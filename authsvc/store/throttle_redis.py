"""`AttemptStore` on Redis (AUTHSVC_REDIS_URL): the same fixed windows as the SQL store, kept in hashes.

Each counter is a hash `{prefix}{key}` with `attempts` and `ends` (the window's end, in milliseconds of
the caller's clock, so tests that move the clock see windows end). Taking an attempt is one Lua script,
which Redis runs atomically, so replicas sharing one Redis cannot both slip under a limit. Each hash also
gets a Redis TTL of its remaining window, which only cleans up; the decision always reads `ends`.
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

# KEYS: the counters; ARGV: now (ms), window (ms), then one limit per key.
# Returns 0 when the attempt was taken, else the end (ms) of the last full window.
_CREATE_ATTEMPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local refused_until = 0
local counts = {}
local ends = {}
for i, key in ipairs(KEYS) do
  local stored = redis.call('HMGET', key, 'attempts', 'ends')
  local count = tonumber(stored[1])
  local ending = tonumber(stored[2])
  if count == nil or ending == nil or ending <= now then
    count = 0
    ending = now + window
  end
  counts[i] = count
  ends[i] = ending
  if count >= tonumber(ARGV[i + 2]) and ending > refused_until then
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

# KEYS[1]: the counter; ARGV[1]: now (ms). Gives back one attempt of a live window.
_DELETE_ATTEMPT = """
local stored = redis.call('HMGET', KEYS[1], 'attempts', 'ends')
local count = tonumber(stored[1])
local ending = tonumber(stored[2])
if count ~= nil and ending ~= nil and ending > tonumber(ARGV[1]) and count > 0 then
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
end
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

    @classmethod
    def from_url(cls, url: str, prefix: str, timeout_seconds: float) -> RedisAttemptStore:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        return cls(client, prefix)

    async def create_attempt(
        self, limits: Sequence[AttemptLimit], now: datetime, window: timedelta
    ) -> datetime | None:
        keys = [self._prefix + limit.key for limit in limits]
        args: list[Any] = [_millis(now), _millis(now + window) - _millis(now)]
        args += [limit.limit for limit in limits]
        with _converted_errors():
            refused_until = int(await self._create(keys=keys, args=args))
        if refused_until == 0:
            return None
        return datetime.fromtimestamp(refused_until / 1000, UTC)

    async def delete_attempt(self, key: str, now: datetime) -> None:
        with _converted_errors():
            await self._delete(keys=[self._prefix + key], args=[_millis(now)])

    async def delete_attempts(self, key: str) -> None:
        with _converted_errors():
            await self._client.delete(self._prefix + key)

    async def ping(self) -> None:
        with _converted_errors():
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
