"""Alembic's environment. store.migrate hands over the engine's own connection (async, under
run_sync); the alembic command line gives a URL instead (sqlalchemy.url)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, MetaData, pool
from sqlalchemy.ext.asyncio import create_async_engine

from store.models import Base


def _migrate(connection: Connection) -> None:
    # a caller that has imported every model module (the console's too) may pass them all
    metadata: MetaData = context.config.attributes.get("target_metadata", Base.metadata)
    context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                      # SQLite alters a table by copying it: batch mode does that
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _from_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("migrations run on a live database only (no --sql)")
given: Connection | None = context.config.attributes.get("connection")
if given is not None:
    _migrate(given)
else:
    asyncio.run(_from_url(context.config.get_main_option("sqlalchemy.url") or ""))
