"""Schema migrations: the revisions add up to the models, a database made before migrations
(create_all, no alembic_version) is adopted with its rows, on SQLite and PostgreSQL, and
`madoguchi db upgrade | current`."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select, text

import bookings.models
import console.directory
import console.sessions
import fax.models
from console.models import ConsoleUser
from madoguchi.cli import main
from store import migrate
from store.db import Database
from store.models import (
    AgentStateChange,
    AuditEntry,
    Base,
    CallRecord,
    InteractionRecord,
    Recording,
    RecordingAgent,
)

assert console.directory and console.sessions and fax.models  # their tables are in the metadata
assert bookings.models
ROOT = Path(__file__).resolve().parents[1]
# what the releases before migrations made with create_all (the baseline revision)
BASELINE_TABLES = ("calls", "recordings", "recording_agents", "audit_log", "deletion_reports",
                   "agent_state_changes", "interactions", "console_users", "console_directory",
                   "console_faq")
AT = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _schema_diff(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_diff)


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _previous_release(db: Database, tables: tuple[str, ...] = BASELINE_TABLES) -> None:
    """Tables as create_all made them before migrations, with rows in them."""
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(
            c, tables=[Base.metadata.tables[name] for name in tables]))
    if tables != BASELINE_TABLES:
        return
    await db.add(CallRecord(id="c1", asterisk_uniqueid="1.1", service="city", did="1000",
                            caller="0312345678", language="ja", offered_at=AT, ended_at=AT,
                            answered_at=AT, outcome="answered", talk_s=42.0,
                            transfers="[]", flow_path="menu"), what="call")
    await db.add(Recording(call_id="c1", service="city", caller="0312345678", started_at=AT,
                           ended_at=AT, duration_s=42.0, file="2026/04/01/c1.wav",
                           size_bytes=1234, sha256="ab" * 32), what="recording")
    async with db.sessions() as session:
        rec_id = await session.scalar(select(Recording.id))
    assert rec_id is not None
    await db.add(RecordingAgent(recording_id=rec_id, agent_id="7001", started_at=AT),
                 AuditEntry(at=AT, actor="admin", client="127.0.0.1", action="play",
                            recording_id=rec_id, call_id="c1"),
                 AgentStateChange(agent_id="7001", event="login", old_state="logged_out",
                                  new_state="available", at=AT),
                 InteractionRecord(call_id="c1", agent_id="7001", service="city",
                                   topic="gomi", outcome_class="resolved", created_at=AT,
                                   call_offered_at=AT),
                 ConsoleUser(name="kanri", role="admin", password_hash="$argon2id$x",
                             disabled=False, created_at=AT), what="rows")


async def _rows_intact(db: Database) -> None:
    async with db.sessions() as session:
        call = await session.get(CallRecord, "c1")
        assert call is not None and (call.caller, call.talk_s, call.answered_at) == (
            "0312345678", 42.0, AT)
        rec = (await session.scalars(select(Recording))).one()
        assert (rec.call_id, rec.sha256, rec.size_bytes) == ("c1", "ab" * 32, 1234)
        assert (await session.scalars(select(RecordingAgent.agent_id))).all() == ["7001"]
        assert (await session.scalars(select(AuditEntry.action))).all() == ["play"]
        assert await session.scalar(select(func.count()).select_from(AgentStateChange)) == 1
        assert (await session.scalars(select(InteractionRecord.topic))).all() == ["gomi"]
        user = await session.get(ConsoleUser, "kanri")
        assert user is not None and user.password_hash == "$argon2id$x"


async def test_an_empty_database_upgrades_to_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await db.revision() is None
        await db.upgrade()
        assert await db.revision() == migrate.head()
        assert await _schema_diff(db) == []
        await db.create_schema()  # at every start: nothing left to do
        assert await db.revision() == migrate.head()
    finally:
        await db.close()


async def test_the_second_revision_is_a_step_on_the_way(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade("0001")
        assert await db.revision() == "0001"
        assert "console_sessions" not in await _tables(db)
        await db.upgrade("0002")
        assert await db.revision() == "0002"
        assert "console_sessions" in await _tables(db)
    finally:
        await db.close()


async def test_the_third_revision_adds_the_satisfaction_tables(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade("0002")
        assert not {"survey_answers", "staff_ratings"} & await _tables(db)
        await db.upgrade()
        assert await db.revision() == migrate.head()
        assert {"survey_answers", "staff_ratings"} <= await _tables(db)
        assert await _schema_diff(db) == []
    finally:
        await db.close()


async def test_the_fourth_revision_adds_callbacks(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade("0003")
        assert "callbacks" not in await _tables(db)
        await db.upgrade("0004")
        assert "callbacks" in await _tables(db)
        async with db.engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {
                col["name"] for col in inspect(c).get_columns("calls")})
            indexes = await conn.run_sync(lambda c: {
                i["name"]: i["unique"] for i in inspect(c).get_indexes("callbacks")})
        assert "callback_of" in columns
        assert indexes["uq_callbacks_open_number"]
    finally:
        await db.close()


async def test_the_fifth_revision_adds_the_bookings_tables(database_url: str) -> None:
    db = Database(database_url)
    tables = {"booking_events", "booking_sessions", "bookings"}
    try:
        await db.upgrade("0004")
        assert not tables & await _tables(db)
        await db.upgrade("0005")
        assert tables <= await _tables(db)
    finally:
        await db.close()


async def test_the_sixth_revision_adds_fax_and_the_interactions_channel(
        database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade("0005")
        async with db.engine.begin() as conn:  # a record as revision 0005 stored it
            await conn.execute(text(
                "INSERT INTO interactions (call_id, agent_id, service, topic, outcome_class,"
                " text, faq_refs, created_at, call_offered_at) VALUES ('c1', '7001', 'city',"
                " 'gomi', 'x', '', '[]', :at, :at)"), {"at": AT})
        assert not {"fax_received", "fax_sent"} & await _tables(db)
        await db.upgrade("0006")
        assert {"fax_received", "fax_sent"} <= await _tables(db)
        async with db.sessions() as session:  # the records made before are the phone's
            assert (await session.scalars(select(InteractionRecord.channel))).all() == [
                "phone"]
        await db.upgrade()
        assert await _schema_diff(db) == []
    finally:
        await db.close()


async def test_a_database_from_before_migrations_keeps_its_rows(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(database_url)
    try:
        await _previous_release(db)
        assert await db.revision() is None
        assert await db.unversioned_tables() == sorted(BASELINE_TABLES)
        caplog.set_level("INFO", logger="store.migrate")
        await db.create_schema()  # what the engine does at start
        assert "adopted by the baseline revision" in caplog.text
        assert await db.revision() == migrate.head()
        assert await db.unversioned_tables() == []
        await _rows_intact(db)
        assert await _schema_diff(db) == []
    finally:
        await db.close()


async def test_a_partial_database_from_before_migrations_gets_the_rest(
        database_url: str) -> None:
    # a command line (users add) could have been the only one to make tables
    db = Database(database_url)
    try:
        await _previous_release(db, ("console_users", "calls"))
        await db.upgrade()
        assert await _tables(db) >= {*BASELINE_TABLES, "console_sessions"}
        assert await _schema_diff(db) == []
    finally:
        await db.close()


async def test_two_processes_migrating_at_once_on_postgresql(pg_cluster: Any) -> None:
    url = pg_cluster.create_database()
    first, second = Database(url), Database(url)
    try:
        await asyncio.gather(first.upgrade(), second.upgrade())
        assert await first.revision() == migrate.head()
        assert await _schema_diff(first) == []
    finally:
        await first.close()
        await second.close()


def test_db_upgrade_and_current_from_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MADOGUCHI_DATABASE_URL", raising=False)
    config, state = tmp_path / "config", tmp_path / "state"
    shutil.copytree(ROOT / "config", config)
    base = ["--config", str(config), "--state", str(state), "db"]
    # a state folder with a database from before migrations
    state.mkdir(mode=0o700)
    db_file = state / "madoguchi.db"
    legacy = Database(f"sqlite+aiosqlite:///{db_file}")

    async def make() -> None:
        try:
            await _previous_release(legacy)
        finally:
            await legacy.close()
    asyncio.run(make())

    assert main([*base, "current"]) == 0
    assert "tables made before schema migrations" in capsys.readouterr().out
    assert main([*base, "upgrade"]) == 0
    assert f"revision {migrate.head()} (was none)" in capsys.readouterr().out
    assert main([*base, "upgrade"]) == 0
    assert "(already the latest)" in capsys.readouterr().out
    assert main([*base, "current"]) == 0
    assert capsys.readouterr().out.strip() == f"{migrate.head()} (the latest)"

    async def check() -> None:
        db = Database(f"sqlite+aiosqlite:///{db_file}")
        try:
            await _rows_intact(db)
        finally:
            await db.close()
    asyncio.run(check())
