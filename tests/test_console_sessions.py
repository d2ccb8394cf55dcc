"""Console sessions outlive an engine restart: kept in the database (the cookie's value only
as its SHA-256), ended by idle time, by logout and for users disabled, removed or changed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from console.auth import COOKIE, Console, ConsoleConfig, Users
from console.http import CONSOLE
from console.models import ConsoleUser
from console.sessions import ConsoleSession, Sessions, digest
from harness.offline_engine import offline_engine
from madoguchi.web import make_app
from store.db import Database

PASSWORD = "correct horse battery"
IDLE = timedelta(minutes=15)
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


async def _serve(tmp_path: Path) -> tuple[TestClient, Console]:
    """An engine's app on the test's database (MADOGUCHI_DATABASE_URL), in its own state."""
    app = make_app(offline_engine(tmp_path), ConsoleConfig())
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, app[CONSOLE]


async def _login(client: TestClient, name: str) -> str:
    page = await client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    resp = await client.post("/console/login", allow_redirects=False, data={
        "name": name, "password": PASSWORD, "csrf": token.group(1)})
    assert resp.status == 303
    return resp.cookies[COOKIE].value


async def _rows(db: Database) -> list[ConsoleSession]:
    async with db.sessions() as session:
        return list((await session.scalars(select(ConsoleSession))).all())


async def test_a_session_survives_an_engine_restart_until_logout(
        tmp_path: Path, database_url: str) -> None:
    client, console = await _serve(tmp_path / "first")
    try:
        await console.users.add("sv", "supervisor", PASSWORD)
        sid = await _login(client, "sv")
        s = console.sessions.get(sid)
        assert s is not None
        csrf = s.csrf
    finally:
        await client.close()  # the engine stops: everything pending is written

    db = Database(database_url)
    try:
        (row,) = await _rows(db)
        # the cookie's value is nowhere in the table, only its hash
        assert row.id_hash == digest(sid) and sid not in repr(vars(row))
        assert (row.user_name, row.role, row.csrf) == ("sv", "supervisor", csrf)
    finally:
        await db.close()

    client, console = await _serve(tmp_path / "second")
    cookie = {"Cookie": f"{COOKIE}={sid}"}
    try:
        assert (await client.get("/api/kpi", headers=cookie)).status == 200
        # the page's CSRF token is the session's, as before the restart
        resp = await client.post("/console/logout", allow_redirects=False,
                                 headers={**cookie, "X-CSRF-Token": csrf})
        assert resp.status == 303
        assert (await client.get("/api/kpi", headers=cookie)).status == 401
    finally:
        await client.close()

    client, console = await _serve(tmp_path / "third")
    try:
        assert (await client.get("/api/kpi", headers=cookie)).status == 401
    finally:
        await client.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_schema()
    try:
        yield database
    finally:
        await database.close()


async def _user(db: Database, name: str, role: str = "supervisor",
                agent_id: str | None = None) -> ConsoleUser:
    user = ConsoleUser(name=name, role=role, password_hash="x", agent_id=agent_id,
                       disabled=False, created_at=T0 - timedelta(days=1))
    await db.add(user, what="user")
    return user


class Restarts:
    """Sessions on one database across restarts, on a clock the test moves."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.now = T0
        self.current: Sessions | None = None

    async def stop(self) -> None:
        if self.current is not None:
            await self.current.close()
        self.current = None

    async def restart(self) -> Sessions:
        await self.stop()
        self.current = Sessions(IDLE, lambda: self.now, self.db)
        await self.current.start()
        return self.current


async def test_idle_sessions_expire_across_restarts(db: Database) -> None:
    run = Restarts(db)
    sessions = await run.restart()
    sv = await _user(db, "sv")
    idle, used = sessions.create(sv), sessions.create(sv)
    run.now += timedelta(minutes=10)
    sessions = await run.restart()
    assert sessions.get(used.id) is not None  # in use: its last-seen time is saved
    run.now += timedelta(minutes=10)  # 20 minutes after `idle` was last seen
    sessions = await run.restart()
    assert sessions.get(idle.id) is None
    assert [r.id_hash for r in await _rows(db)] == [digest(used.id)]
    found = sessions.get(used.id)
    assert found is not None and found.user == "sv" and found.id == used.id
    run.now += IDLE + timedelta(seconds=1)
    assert sessions.get(used.id) is None  # expired while running: its row goes too
    sessions = await run.restart()
    assert await _rows(db) == []


async def test_logout_drops_the_session_for_good(db: Database) -> None:
    run = Restarts(db)
    sessions = await run.restart()
    s = sessions.create(await _user(db, "sv"))
    sessions.drop(s.id)
    sessions = await run.restart()
    assert sessions.get(s.id) is None and await _rows(db) == []


async def test_a_disabled_users_sessions_go_at_once(db: Database) -> None:
    run = Restarts(db)
    sessions = await run.restart()
    sv, other = await _user(db, "sv"), await _user(db, "other")
    mine = [sessions.create(sv), sessions.create(sv)]
    theirs = sessions.create(other)
    await Users(db).change("sv", disabled=True)
    assert sessions.end_user("sv") == 2  # what the admin page does on a disable
    assert all(sessions.get(s.id) is None for s in mine)
    sessions = await run.restart()
    assert [r.user_name for r in await _rows(db)] == ["other"]
    assert sessions.get(theirs.id) is not None


async def test_users_changed_while_the_engine_was_down_lose_their_sessions(
        db: Database) -> None:
    run = Restarts(db)
    sessions = await run.restart()
    names = ("disabled", "removed", "demoted", "replaced", "kept")
    made = {name: sessions.create(await _user(db, name)) for name in names}
    await run.stop()
    # the `users` command line, with no engine running
    users = Users(db)
    await users.change("disabled", disabled=True)
    await users.remove("removed")
    await users.change("demoted", role="city_viewer")
    await users.add("replaced", "supervisor", PASSWORD, replace=True)  # a new password
    sessions = await run.restart()
    assert [name for name, s in made.items() if sessions.get(s.id) is not None] == ["kept"]
    assert [r.user_name for r in await _rows(db)] == ["kept"]
