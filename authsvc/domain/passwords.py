"""Password hashing with bcrypt on a bounded thread pool, so the event loop never waits on it.

bcrypt releases the GIL, so the pool's threads hash in parallel with the loop serving other RPCs.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from authsvc.domain.errors import InvalidRequest, PasswordTooLong, WeakPassword

MIN_PASSWORD_CHARACTERS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt only reads 72 bytes; bcrypt 5 raises on longer input
T = TypeVar("T")


def check_new_password(password: str) -> bytes:
    """Apply the password policy for a new password and return its UTF-8 bytes."""
    if len(password) < MIN_PASSWORD_CHARACTERS:
        raise WeakPassword()
    return _encode(password)


def _encode(password: str) -> bytes:
    try:
        encoded = password.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot come from protobuf, but can from callers
        raise InvalidRequest("Password is not valid UTF-8") from exc
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong()
    return encoded


def hash_cost(password_hash: str) -> int:
    """The cost factor of a `$2b$NN$...` hash (0 when it cannot be read)."""
    parts = password_hash.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 0


class PasswordHasher:
    """Hashes and checks passwords on its own pool of `threads` threads at cost `rounds`."""

    def __init__(self, rounds: int, threads: int) -> None:
        self.rounds = rounds
        self._threads = threads
        self._submitted = 0  # hashes handed to the pool and not finished: running plus queued
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="authsvc-bcrypt")
        self._decoy: bytes | None = None

    @property
    def queue_depth(self) -> int:
        """How many hashes wait for a free thread (the pool's backlog, a sign logins outrun the CPU)."""
        return max(0, self._submitted - self._threads)

    async def _run(self, function: Callable[[bytes, bytes], T], password: bytes, other: bytes) -> T:
        self._submitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, function, password, other)
        finally:
            self._submitted -= 1

    async def hash(self, password: bytes) -> str:
        salt = bcrypt.gensalt(rounds=self.rounds)
        hashed = await self._run(bcrypt.hashpw, password, salt)
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check `password`; with no hash (unknown user) spend the same work on a decoy and say False.

        A wrong password for a hash made at a lower cost (before AUTHSVC_BCRYPT_ROUNDS was raised) also
        spends a check of the decoy at the current cost, so an old account's wrong password costs at
        least what an unknown email does (a right one is re-hashed at the current cost by the login).
        Raise PasswordTooLong for input bcrypt cannot take, before any work.
        """
        encoded = _encode(password)
        if password_hash is None:
            await self._spend_decoy_check(encoded)
            return False
        expected = password_hash.encode("ascii")
        computed = await self._run(bcrypt.hashpw, encoded, expected)
        matched = hmac.compare_digest(computed, expected)
        if not matched and self.needs_rehash(password_hash):
            await self._spend_decoy_check(encoded)
        return matched

    async def _spend_decoy_check(self, encoded: bytes) -> None:
        """One bcrypt check at the current cost whose answer is never used."""
        await self._run(bcrypt.checkpw, encoded, await self._decoy_hash())

    def needs_rehash(self, password_hash: str) -> bool:
        return hash_cost(password_hash) < self.rounds

    async def warm_up(self) -> None:
        """Compute the decoy hash now, so the first unknown-user login costs what later ones do."""
        await self._decoy_hash()

    async def _decoy_hash(self) -> bytes:
        """A hash at the current cost that no password matches on purpose, made once."""
        if self._decoy is None:
            self._decoy = (await self.hash(b"decoy password for unknown accounts")).encode("ascii")
        return self._decoy

    def close(self) -> None:
        self._pool.shutdown(wait=True)
