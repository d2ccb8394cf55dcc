"""Writes that must not be lost wait out a busy SQLite database (a real file, a real lock)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import store.db
from store.db import Database
from store.models import AgentStateChange


def _change() -> AgentStateChange:
    return AgentStateChange(agent_id="7001", event="login", old_state="logged_out",
                            new_state="available", reason=None, at=datetime.now(UTC))


async def _add(session: AsyncSession) -> None:
    session.add(_change())


def _hold_write_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    locked.set()
    threading.Event().wait(seconds)
    other.execute("ROLLBACK")
    other.close()


@pytest.fixture
async def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setattr(store.db, "BUSY_TIMEOUT_S", 0.05)  # SQLite gives up at once
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await database.create_schema()
    return database


async def test_a_write_waits_out_another_writer_and_lands(db: Database, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "m.db", 0.5, locked))
    holder.start()
    await asyncio.to_thread(locked.wait)
    # the same row object again on every attempt: a failed flush leaves it insertable
    await db.add(_change(), what="a state change")
    holder.join()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AgentStateChange)) == 1
    assert "database busy writing a state change" in caplog.text
    await db.close()


async def test_other_errors_are_not_retried(db: Database, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    async def bad(session: AsyncSession) -> None:
        await session.execute(select(func.count()).select_from(AgentStateChange).where(
            AgentStateChange.agent_id == func.no_such_function()))

    with pytest.raises(OperationalError):
        await db.write(bad, "nonsense")
    assert "retrying" not in caplog.text
    await db.close()


async def test_a_write_waits_for_a_free_pooled_connection(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    await db.create_schema()
    await db.engine.dispose()
    # one connection, given up on after 0.1 s: as when every pooled one waits for the lock
    db.engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
                                    pool_size=1, max_overflow=0, pool_timeout=0.1)
    db.sessions = async_sessionmaker(db.engine, expire_on_commit=False)
    async with db.engine.connect():
        writing = asyncio.create_task(db.write(_add, "a busy pool"))
        await asyncio.sleep(0.4)
        assert not writing.done()
    await writing
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AgentStateChange)) == 1
    assert "database busy writing a busy pool" in caplog.text
    await db.close()


async def test_the_process_writers_take_turns_instead_of_failing_in_sqlite(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    # A transaction that stays open far longer than SQLite's busy timeout (as on a saturated
    # event loop): the other writers wait their turn in order, none meets "database is locked".
    order: list[str] = []

    async def slow(session: AsyncSession) -> None:
        session.add(_change())
        await session.flush()  # the SQLite write lock is taken here
        await asyncio.sleep(0.3)
        order.append("slow")

    def quick(name: str) -> Callable[[AsyncSession], Awaitable[None]]:
        async def work(session: AsyncSession) -> None:
            session.add(_change())
            await session.flush()
            order.append(name)
        return work

    first = asyncio.create_task(db.write(slow, "slow"))
    await asyncio.sleep(0.05)
    await asyncio.gather(*(db.write(quick(f"q{i}"), f"q{i}") for i in range(5)), first)
    assert order == ["slow", "q0", "q1", "q2", "q3", "q4"]
    assert "database busy" not in caplog.text
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AgentStateChange)) == 6
    await db.close()
