"""Roles for tests: no RPC or command makes an admin, so tests write the role into the server's store,
as an operator would with SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, update

from authsvc.store.schema import users


async def make_admin(store: Any, email: str) -> None:
    """Give the account of `email` the `admin` role in a running server's SQL store."""

    def promote(connection: Connection) -> None:
        result = connection.execute(update(users).where(users.c.email == email).values(role="admin"))
        assert result.rowcount == 1, f"no account {email}"

    await store.runner.run(promote)
