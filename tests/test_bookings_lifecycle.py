"""Bookings as personal data from the command line: `bookings purge` past retention with a
0600 deletion report, the hand-over export carrying the bookings tables, `erase` removing
them; and `bookings draw`."""

from __future__ import annotations

import asyncio
import json
import tarfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bookings.allocation import Window
from bookings.models import Booking
from bookings.service import BookingService
from core.settings import load_settings
from harness.offline_engine import offline_config
from madoguchi.cli import main
from store.db import Database
from tests.bookings_data import ADMIN, DESK, NOW, WEB, event, request


def _seed(url: str, days_ago: int, rule: str = "first_come", event_id: str = "old") -> str:
    """One event whose session ended `days_ago` days ago, with one booking made in its
    window; its booking number."""
    async def run() -> str:
        db = Database(url)
        try:
            await db.create_schema()
            ends = datetime.now(UTC) - timedelta(days=days_ago)
            starts = ends - timedelta(hours=2)
            svc = BookingService(db, clock=lambda: starts - timedelta(days=3))
            data = event(event_id, rule=rule)
            session = data.sessions[0].__class__(starts, ends, "会館", "Hall", 5)
            await svc.save_event(replace(data, sessions=(session,), window=Window(
                starts - timedelta(days=10), starts - timedelta(days=2))), ADMIN)
            sid = (await svc.event(event_id)).sessions[0].row.id
            return (await svc.book(request(sid), WEB)).booking.number
        finally:
            await db.close()
    return asyncio.run(run())


def _count(url: str) -> int:
    async def run() -> int:
        db = Database(url)
        try:
            async with db.sessions() as s:
                return int(await s.scalar(select(func.count()).select_from(Booking)) or 0)
        finally:
            await db.close()
    return asyncio.run(run())


def test_purge_export_and_erase_cover_bookings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MADOGUCHI_DATABASE_URL", raising=False)
    config, state = offline_config(tmp_path), tmp_path / "state"
    state.mkdir(mode=0o700)
    url = load_settings(config, state).database_url
    number = _seed(url, days_ago=100)
    base = ["--config", str(config), "--state", str(state)]
    # the export hands the bookings over with the rest
    out = tmp_path / "handover.tar"
    today = datetime.now(UTC).date()
    assert main([*base, "export", "--from", str(today - timedelta(days=400)), "--to",
                 str(today), str(out)]) == 0
    capsys.readouterr()
    with tarfile.open(out) as tar:
        member = tar.extractfile("tables/bookings.jsonl")
        assert member is not None
        rows = [json.loads(line) for line in member.read().splitlines()]
    assert [r["number"] for r in rows] == [number]
    # 100 days after its session, past the 90 of the configuration: purged, with a report
    assert main([*base, "bookings", "purge"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bookings"] == 1
    report = Path(result["report_file"])
    assert report.stat().st_mode & 0o777 == 0o600
    assert json.loads(report.read_text())["numbers"] == [number]
    assert _count(url) == 0
    # erase removes whatever bookings are left
    _seed(url, days_ago=10, event_id="recent")
    assert _count(url) == 1
    assert main([*base, "erase", "--all", "--confirm"]) == 0
    assert _count(url) == 0


def test_draw_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MADOGUCHI_DATABASE_URL", raising=False)
    config, state = offline_config(tmp_path), tmp_path / "state"
    state.mkdir(mode=0o700)
    url = load_settings(config, state).database_url
    _seed(url, days_ago=-1, rule="lottery")  # the session is tomorrow, its window closed
    base = ["--config", str(config), "--state", str(state)]
    assert main([*base, "bookings", "draw", "old", "--seed", "abc"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert next(iter(out["sessions"].values())) == {"seed": "abc", "entries": 1,
                                                 "confirmed": 1, "waiting": 0, "lost": 0}
    assert main([*base, "bookings", "draw", "old"]) == 1
    assert "drawn already" in capsys.readouterr().err
    assert main([*base, "bookings", "draw"]) == 2


def test_the_monthly_report_counts_bookings_by_channel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MADOGUCHI_DATABASE_URL", raising=False)
    config, state = offline_config(tmp_path), tmp_path / "state"
    state.mkdir(mode=0o700)
    url = load_settings(config, state).database_url

    async def seed() -> None:
        db = Database(url)
        try:
            await db.create_schema()
            svc = BookingService(db, clock=lambda: NOW)
            await svc.save_event(event(), ADMIN)
            sid = (await svc.event("yoga")).sessions[0].row.id
            await svc.book(request(sid, phone="0311110001"), WEB)
            await svc.book(request(sid, phone="0311110002"), WEB)
            done = await svc.book(request(sid, phone="0311110003"), DESK)
            await svc.cancel(done.booking.number, None, DESK)
        finally:
            await db.close()
    asyncio.run(seed())
    base = ["--config", str(config), "--state", str(state)]
    month = NOW.strftime("%Y-%m")
    assert main([*base, "report", "--month", month, "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    html = (tmp_path / "r" / f"report-{month}.html").read_text(encoding="utf-8")
    assert "講座・催しの申込(受付経路別)" in html
    assert "<tr><td>ウェブ</td><td>2</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>" in html
    assert "<td>電話(オペレーター)</td><td>0</td><td>0</td><td>0</td><td>0</td><td>1</td>" in html
