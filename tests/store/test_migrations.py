"""The Alembic migrations build exactly the schema the code declares, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from authsvc.store.migrate import migrate
from authsvc.store.schema import metadata


async def test_the_migrated_schema_matches_the_declared_tables_and_indexes(database_url):
    await migrate(database_url)
    await migrate(database_url)  # a second run is a no-op
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert [d for d in differences if not _is_alembic_bookkeeping(d)] == []


def _is_alembic_bookkeeping(difference: object) -> bool:
    return (
        isinstance(difference, tuple)
        and difference[0] == "remove_table"
        and (difference[1].name == "alembic_version")
    )
