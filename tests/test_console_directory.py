"""Staff directory and FAQ: CSV import (CLI and admin upload), literal search, the desk's
search API behind the role check, and errors that name the line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from console.auth import COOKIE, Console, ConsoleConfig
from console.directory import CsvError, Directory
from console.http import CONSOLE, DIRECTORY
from console.models import ConsoleUser
from harness.offline_engine import offline_config, offline_engine
from madoguchi.cli import main
from madoguchi.engine import Engine
from madoguchi.web import make_app
from store.db import Database

STAFF = ("\ufeffsection,name,extension,note\n"
         "環境課,山田 太郎,2101,ごみ収集\n"
         "市民課,佐藤 花子,2201,住民票\n"
         "税務課,100%_担当,2301,\n")
FAQ = ("id,question,answer,keywords\n"
       "gomi-1,粗大ごみの出し方は?,予約センターへ電話,粗大 ごみ\n"
       "juumin-1,住民票はどこで?,市民課の窓口,住民票\n")


@pytest.fixture
async def directory(database_url: str) -> AsyncIterator[Directory]:
    db = Database(database_url)
    await db.create_schema()
    try:
        yield Directory(db)
    finally:
        await db.close()


async def test_import_and_search_literally(directory: Directory) -> None:
    assert (await directory.import_directory(STAFF)).rows == 3
    assert [e.name for e in await directory.search_directory("ごみ")] == ["山田 太郎"]
    assert [e.extension for e in await directory.search_directory("市民")] == ["2201"]
    # % and _ are the user's characters, not wildcards
    assert [e.name for e in await directory.search_directory("%_")] == ["100%_担当"]
    assert await directory.search_directory("_") != await directory.search_directory("課")
    await directory.import_faq(FAQ)
    assert [f.id for f in await directory.search_faq("粗大")] == ["gomi-1"]
    assert [f.id for f in await directory.search_faq("juumin-1")] == ["juumin-1"]
    # a new import replaces the list whole
    await directory.import_directory("section,name,extension\n総務課,鈴木,2401\n")
    assert await directory.search_directory("山田") == []


async def test_bad_csv_is_refused_with_its_line(directory: Directory) -> None:
    with pytest.raises(CsvError, match="missing column"):
        await directory.import_directory("name,extension\nx,1\n")
    with pytest.raises(CsvError, match="line 3: name is empty"):
        await directory.import_directory("section,name,extension\na,b,1\nc,,2\n")
    with pytest.raises(CsvError, match="extension must be digits"):
        await directory.import_directory("section,name,extension\na,b,12-3\n")
    with pytest.raises(CsvError, match="appears twice"):
        await directory.import_faq("id,question,answer\nx,q,a\nx,q2,a2\n")
    await directory.import_directory(STAFF)
    with pytest.raises(CsvError):
        await directory.import_directory("section,name,extension\na,,1\n")
    assert len(await directory.search_directory("課")) == 3  # the failed import changed nothing


def test_cli_imports_the_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = offline_config(tmp_path)
    staff = tmp_path / "staff.csv"
    staff.write_text(STAFF, encoding="utf-8")
    base = ["--config", str(config), "--state", str(tmp_path / "state"), "import"]
    assert main([*base, "directory", str(staff)]) == 0
    assert "3 rows" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("section,name,extension\na,,1\n", encoding="utf-8")
    assert main([*base, "faq", str(bad)]) == 2
    assert "missing column" in capsys.readouterr().err


@pytest.fixture
async def client(tmp_path: Path, database_url: str
                 ) -> AsyncIterator[tuple[TestClient, Console, Engine]]:
    engine = offline_engine(tmp_path)
    app = make_app(engine, ConsoleConfig())
    c = TestClient(TestServer(app))
    await c.start_server()
    try:
        yield c, app[CONSOLE], engine
    finally:
        await c.close()


def _session(console: Console, role: str, agent: str | None = None) -> tuple[dict[str, str],
                                                                             str]:
    from datetime import UTC, datetime

    s = console.sessions.create(ConsoleUser(name=role, role=role, password_hash="",
                                            agent_id=agent, disabled=False,
                                            created_at=datetime.now(UTC)))
    return {"Cookie": f"{COOKIE}={s.id}"}, s.csrf


async def test_admin_uploads_and_operators_search(
        client: tuple[TestClient, Console, Engine]) -> None:
    c, console, engine = client
    admin, csrf = _session(console, "admin")
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("kind", "directory")
    form.add_field("file", STAFF.encode(), filename="staff.csv", content_type="text/csv")
    resp = await c.post("/console/admin/import", data=form, headers=admin,
                        allow_redirects=False)
    assert resp.status == 303
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("kind", "faq")
    form.add_field("file", b"id,question\nx,y\n", filename="faq.csv", content_type="text/csv")
    resp = await c.post("/console/admin/import", data=form, headers=admin)
    assert resp.status == 400 and "faq.csv: line 1: missing column(s) answer" in await resp.text()
    operator, _ = _session(console, "operator", "7001")
    resp = await c.get("/api/directory?q=%E7%92%B0%E5%A2%83", headers=operator)  # 環境
    assert resp.status == 200
    assert (await resp.json())["items"] == [{"section": "環境課", "name": "山田 太郎",
                                             "extension": "2101", "note": "ごみ収集"}]
    resp = await c.get("/api/directory?q=", headers=operator)
    assert resp.status == 400
    city, _ = _session(console, "city_viewer")
    resp = await c.get("/api/directory?q=x", headers=city)
    assert resp.status == 403
    rows = await engine.recordings.audit_rows()
    assert (rows[0].actor, rows[0].action, rows[0].detail) == ("admin", "setting",
                                                              "import directory: 3 rows")
    assert c.app[DIRECTORY] is not None
