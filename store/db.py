"""Database engine lifecycle: one async engine per process, schema migrated at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from . import migrate
from .models import Base

log = logging.getLogger(__name__)
T = TypeVar("T")
# SQLite lets one writer in at a time; the others wait up to BUSY_TIMEOUT_S, then fail with
# "database is locked". With a saturated event loop a transaction's few statements can take
# longer than that to be scheduled (bench/load.py past 80 calls/s), so this process's writes
# queue on one asyncio lock instead of in SQLite, and busy errors (another process, such as
# a CLI purge) are retried: writes that must not be lost go through write(). So are lost or
# refused connections (a PostgreSQL restart); a call record that still fails after the last
# attempt goes to the journal (recordings.service.RecordingService.close_call).
BUSY_TIMEOUT_S = 30
WRITE_ATTEMPTS = 8


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_S} if sqlite else {})
        if sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # one writer at a time, in order, where the database itself allows only one
        self._write_turn: asyncio.Lock | None = asyncio.Lock() if sqlite else None

    async def write(self, work: Callable[[AsyncSession], Awaitable[T]], what: str) -> T:
        """Run work in one transaction, again (after a pause) if the database was busy."""
        delay = 0.1
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self._turn(), self.sessions() as session, session.begin():
                    return await work(session)
            except (DBAPIError, PoolTimeout, OSError) as exc:
                # every pooled connection taken (each waiting for the lock) is busy too
                kind = "busy" if _busy(exc) else "unreachable" if _unreachable(exc) else None
                if kind is None or attempt == WRITE_ATTEMPTS:
                    raise
                log.warning("database %s writing %s (attempt %d): retrying in %.1f s",
                            kind, what, attempt, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def add(self, *rows: Base, what: str) -> None:
        """Insert rows in one transaction through write()."""
        async def insert(session: AsyncSession) -> None:
            session.add_all(rows)
        await self.write(insert, what)

    def _turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._write_turn if self._write_turn is not None else contextlib.nullcontext()

    async def create_schema(self) -> None:
        """The schema at its latest revision, whatever release made the database."""
        await self.upgrade()

    async def upgrade(self, revision: str = "head") -> None:
        """Run the schema migrations up to `revision` (store.migrate) in one transaction."""
        async with self._turn(), self.engine.begin() as conn:
            await conn.run_sync(migrate.upgrade, revision)

    async def revision(self) -> str | None:
        """The schema's revision; None for an empty database or one from before migrations."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(migrate.current)

    async def unversioned_tables(self) -> list[str]:
        async with self.engine.connect() as conn:
            return await conn.run_sync(migrate.unversioned_tables)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # any driver error means "not reachable" for health checks
            return False

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: object, _record: ConnectionPoolEntry) -> None:
    # WAL lets the API read while the engine writes; foreign keys are off by default in SQLite
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _busy(exc: Exception) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


def _unreachable(exc: Exception) -> bool:
    """Connection refused or lost, or a server starting up or shutting down."""
    if isinstance(exc, OSError):  # asyncpg's connect errors come through unwrapped
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or "the database system is" in str(exc.orig).lower()
