"""The bcrypt pool's queue depth: hashes waiting for a thread, what the metrics gauge shows."""

from __future__ import annotations

import asyncio

from authsvc.domain.passwords import PasswordHasher
from authsvc.transport.metrics import ServerMetrics


async def test_hashes_beyond_the_pool_threads_are_counted_as_queued_until_they_finish():
    hasher = PasswordHasher(rounds=8, threads=1)
    metrics = ServerMetrics()
    metrics.watch_bcrypt_queue(lambda: hasher.queue_depth)
    try:
        tasks = [asyncio.create_task(hasher.hash(b"correct horse")) for _ in range(3)]
        await asyncio.sleep(0)  # every task has handed its hash to the pool
        assert hasher.queue_depth == 2
        assert b"authsvc_bcrypt_queue_depth 2.0" in metrics.render()
        await asyncio.gather(*tasks)
        assert hasher.queue_depth == 0
    finally:
        hasher.close()
