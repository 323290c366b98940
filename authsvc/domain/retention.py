"""Retention: deleting sessions that ended long ago (`authsvc prune --older-than 30d`).

A session row outlives its end on purpose (revoked rows are the audit trail of who ended what); this is
how operators bound that history.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from authsvc.store import SessionStore
from authsvc.store.interface import AccountTokenStore
from authsvc.store.outbox import Outbox
from authsvc.store.throttle import SqlAttemptStore

DEFAULT_BATCH_SIZE = 500


async def _in_batches(delete_batch: Callable[[int], Awaitable[int]], batch_size: int) -> int:
    """Call `delete_batch(batch_size)` until a batch comes back short; return the total deleted.

    Each batch is its own short transaction, so live traffic never waits long on the locks, and an
    interrupted run leaves whole batches deleted and can simply be run again.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    total = 0
    while True:
        deleted = await delete_batch(batch_size)
        total += deleted
        if deleted < batch_size:
            return total


async def delete_sessions_ended_before(
    store: SessionStore, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete every session that expired or was revoked before `cutoff`, in batches; return how many."""
    return await _in_batches(partial(store.delete_sessions_before, cutoff), batch_size)


async def delete_ended_throttle_windows(
    attempts: SqlAttemptStore, now: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete the login-throttling counters whose window has ended, in batches; return how many."""
    return await _in_batches(partial(attempts.delete_ended_windows, now), batch_size)


async def delete_account_tokens_expired_before(
    store: AccountTokenStore, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete the reset and verification tokens that expired before `cutoff` (used or not: an expired
    token is refused either way), in batches; return how many."""
    return await _in_batches(partial(store.delete_account_tokens_before, cutoff), batch_size)


async def delete_finished_mail_before(
    outbox: Outbox, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete the sent or abandoned mails (their bodies are gone already) queued before `cutoff`, in
    batches; return how many."""
    return await _in_batches(partial(outbox.delete_finished_before, cutoff), batch_size)
