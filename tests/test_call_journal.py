"""Call records the database refuses are kept in state/journal/ and stored when it answers
again: nothing lost, nothing twice. The database really refuses: SQLite is write-locked by
another connection, PostgreSQL makes the database read-only."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

import madoguchi.engine
import store.db
from core.calls import Call
from harness.offline_engine import offline_engine
from harness.ports import free_port
from madoguchi.web import make_app
from recordings.reconcile import Reconciler
from recordings.service import RecordingPaths, RecordingService, call_entry
from store.db import Database
from store.journal import Journal
from store.models import CallRecord, Recording, RecordingAgent
from tests.recorded_calls import T0, answered_call


@pytest.fixture
async def svc(tmp_path: Path, database_url: str,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RecordingService]:
    # a refused write gives up after two short attempts instead of a minute
    monkeypatch.setattr(store.db, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(store.db, "WRITE_ATTEMPTS", 2)
    db = Database(database_url)
    await db.create_schema()
    paths = RecordingPaths(tmp_path / "spool", tmp_path / "archive", tmp_path / "cache",
                           tmp_path / "reports")
    service = RecordingService(db, paths, known_agents=["7001", "7002"],
                               journal=Journal(tmp_path / "state" / "journal", "calls"))
    try:
        yield service
    finally:
        await db.close()


@asynccontextmanager
async def refusing(db: Database) -> AsyncIterator[None]:
    """While inside, the database refuses every write of `db`."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(str(url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock until the rollback
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    # a connection of its own that stays writable, to switch the database back
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                  password=url.password, database=url.database,
                                  server_settings={"default_transaction_read_only": "off"})
    try:
        await admin.execute(f'ALTER DATABASE "{url.database}" SET '
                            "default_transaction_read_only = on")
        await db.engine.dispose()  # pooled connections started before the switch
        yield
        await admin.execute(f'ALTER DATABASE "{url.database}" RESET '
                            "default_transaction_read_only")
        await db.engine.dispose()
    finally:
        await admin.close()


def unanswered_call() -> Call:
    call = Call("9.9", "PJSIP/trunk-9", "water", "1001", "0455555555", T0)
    call.ended_at = T0 + timedelta(seconds=20)  # never queued: abandoned in the IVR
    return call


async def count(db: Database, table: type[CallRecord | Recording | RecordingAgent]) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def test_refused_call_records_are_kept_then_stored_once(svc: RecordingService,
                                                              tmp_path: Path) -> None:
    journal = svc.journal
    assert journal is not None
    answered = answered_call(svc, "0312345678", T0)
    gone = unanswered_call()
    async with refusing(svc.db):
        assert await svc.close_call(answered, 1) is None
        assert await svc.close_call(gone, 1) is None
        assert svc.counters.journaled == 2
        kept = journal.entries()
        assert [e["key"] for e in kept] == [answered.id, gone.id]
        assert kept[0]["call"]["caller"] == "0312345678"
        assert kept[0]["agents"] == ["7001"] and kept[1]["recording"] is None
        # the archive file holds the audio now; the legs are gone from the spool
        assert (svc.paths.archive / str(answered.recording)).is_file()
        assert not any(svc.paths.spool.rglob("*.wav"))
        # still refused: nothing is stored, nothing leaves the journal
        assert await svc.replay_journal() == 0
        assert len(journal.entries()) == 2
    # personal data: a 0700 folder, a 0600 file
    assert stat.S_IMODE(journal.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert await count(svc.db, CallRecord) == 0

    assert await svc.replay_journal() == 2
    assert not journal.path.exists() and journal.entries() == []
    async with svc.db.sessions() as s:
        calls = {c.id: c for c in (await s.scalars(select(CallRecord))).all()}
        rec = await s.scalar(select(Recording))
    assert set(calls) == {answered.id, gone.id}
    assert calls[answered.id].caller == "0312345678" and calls[gone.id].service == "water"
    assert calls[answered.id].answered_at == answered.answered_at
    assert rec is not None and rec.call_id == answered.id and rec.agent_id == "7001"
    assert (await count(svc.db, RecordingAgent)) == 1

    # an entry that outlived its commit (a crash between commit and removal) is harmless
    for entry in kept:
        journal.append(entry)
    assert await svc.replay_journal() == 2
    assert not journal.path.exists()
    assert [await count(svc.db, t) for t in (CallRecord, Recording, RecordingAgent)] == [2, 1, 1]


async def test_replay_gives_the_reconcilers_stand_in_row_its_real_details(
        svc: RecordingService) -> None:
    journal = svc.journal
    assert journal is not None
    call = answered_call(svc, "0312345678", T0, agent="7002")
    async with refusing(svc.db):
        assert await svc.close_call(call, 1) is None
    # the reconciler runs first and indexes the archive file it finds without a row
    await Reconciler(svc).run()
    async with svc.db.sessions() as s:
        stand_in = await s.get(CallRecord, call.id)
    assert stand_in is not None and stand_in.caller == "unknown"

    assert await svc.replay_journal() == 1
    async with svc.db.sessions() as s:
        row = await s.get(CallRecord, call.id)
        rec = await s.scalar(select(Recording).where(Recording.call_id == call.id))
        agents = (await s.scalars(select(RecordingAgent.agent_id))).all()
    assert row is not None and (row.caller, row.service, row.outcome) == (
        "0312345678", "city", "answered")
    assert rec is not None and (rec.caller, rec.agent_id, rec.outcome) == (
        "0312345678", "7002", "answered")
    assert list(agents) == ["7002"]
    assert [await count(svc.db, t) for t in (CallRecord, Recording)] == [1, 1]


def test_journal_file_survives_a_torn_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", "calls")
    journal.append({"key": "a", "n": 1})
    with open(journal.path, "ab") as f:
        f.write(b'{"key": "b", "n"')  # a crash in the middle of a write
    journal.append({"key": "c", "n": 3})
    assert [e["key"] for e in journal.entries()] == ["a", "c"]
    journal.remove(["a"])
    assert [e["key"] for e in journal.entries()] == ["c"]
    # the unreadable line is set aside for a person, never replayed and never just dropped
    assert journal.unreadable.read_bytes() == b'{"key": "b", "n"\n'
    assert stat.S_IMODE(journal.unreadable.stat().st_mode) == 0o600
    assert json.loads(journal.path.read_text(encoding="utf-8")) == {"key": "c", "n": 3}
    journal.remove(["c"])
    assert not journal.path.exists()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.02)


async def test_the_engine_replays_at_start_and_on_its_timer(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(madoguchi.engine, "JOURNAL_REPLAY_S", 0.05)
    engine = offline_engine(tmp_path)
    journal = engine.recordings.journal
    assert journal is not None and journal.folder == tmp_path / "state" / "journal"
    before = unanswered_call()
    journal.append(call_entry(before, None, []))  # left by the last run
    later = Call("8.8", "PJSIP/trunk-8", "city", "1000", "0366666666", T0)
    later.ended_at = T0 + timedelta(seconds=5)

    async def stored(call_id: str) -> bool:
        async with engine.db.sessions() as s:
            return await s.get(CallRecord, call_id) is not None

    async with TestClient(TestServer(make_app(engine))) as client:
        assert await stored(before.id) and not journal.path.exists()
        journal.append(call_entry(later, None, []))  # refused while the engine runs
        auth = {"Authorization": f"Bearer {engine.secrets.api_token}"}
        text = await (await client.get("/metrics", headers=auth)).text()
        assert "madoguchi_call_journal_pending" in text
        await until(lambda: stored(later.id))
        await until(lambda: asyncio.to_thread(lambda: not journal.path.exists()))

        async def counted() -> bool:  # counted once the removal's thread has returned
            return engine.recordings.counters.replayed >= 2

        await until(counted)
    assert engine.recordings.counters.replayed == 2


async def test_an_unreachable_server_is_retried_then_the_call_journaled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    monkeypatch.setattr(store.db, "WRITE_ATTEMPTS", 2)
    db = Database(f"postgresql+asyncpg://nobody:x@127.0.0.1:{free_port()}/none")
    paths = RecordingPaths(tmp_path / "spool", tmp_path / "archive", tmp_path / "cache",
                           tmp_path / "reports")
    journal = Journal(tmp_path / "journal", "calls")
    service = RecordingService(db, paths, journal=journal)
    try:
        call = unanswered_call()
        assert await service.close_call(call, 1) is None
        assert "database unreachable writing call" in caplog.text
        assert [e["key"] for e in journal.entries()] == [call.id]
        assert await service.replay_journal() == 0  # still away: kept
        assert "journal replay paused, database still away" in caplog.text
        assert len(journal.entries()) == 1
    finally:
        await db.close()
