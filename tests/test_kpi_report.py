"""Monthly report: HTML and PDF with charts and proposals derived from the data; the `kpi`,
`staffing` and `report` commands."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import load_settings
from kpi.report import month_data, write_report
from kpi.service import KpiService
from madoguchi.cli import main
from store.db import Database
from store.models import AgentStateChange, CallRecord, InteractionRecord

ROOT = Path(__file__).resolve().parents[1]
DAY = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)  # 09:00 Tokyo


def call(n: int, at: datetime, answered: bool, wait: float, talk: float = 120) -> CallRecord:
    queued = at + timedelta(seconds=15)
    ans = queued + timedelta(seconds=wait) if answered else None
    end = ans + timedelta(seconds=talk) if ans else queued + timedelta(seconds=wait)
    return CallRecord(id=f"c{n}", asterisk_uniqueid=f"u{n}", service="city", did="1000",
                      caller="0312345678", language="ja", flow_path="", topic="garbage",
                      queue="city", agent_id="7001" if ans else None, offered_at=at,
                      queued_at=queued, ring_at=None, answered_at=ans, ended_at=end,
                      outcome="answered" if ans else "abandoned_waiting", wait_s=wait,
                      talk_s=talk if ans else None,
                      transfers='[{"from_agent": "7001", "to": "8123", "kind": "blind", '
                                '"at": "2026-11-04T00:01:00+00:00"}]' if n == 1 else "[]")


async def seed(db: Database) -> None:
    """09:00–09:30: 10 calls, 5 answered, 1 operator staffed. 10:00: 4 calls, all answered."""
    await db.create_schema()
    rows = [call(i, DAY + timedelta(minutes=3 * i), i % 2 == 0, 5 if i % 4 else 20)
            for i in range(10)]
    rows += [call(20 + i, DAY + timedelta(hours=1, minutes=5 * i), True, 3) for i in range(4)]
    inter = [InteractionRecord(call_id=r.id, agent_id="7001", service="city", topic="garbage",
                               outcome_class=cls, other_kind=None, text="", faq_refs="[]",
                               created_at=r.ended_at, call_offered_at=r.offered_at)
             for r, cls in zip([r for r in rows if r.answered_at],
                               "取次 転送 取次 完了 転送 取次 完了 転送 転送".split(),
                               strict=True)]
    states = [AgentStateChange(agent_id="7001", event="login", old_state="logged_out",
                               new_state="available", reason=None, at=DAY),
              AgentStateChange(agent_id="7001", event="logout", old_state="available",
                               new_state="logged_out", reason=None,
                               at=DAY + timedelta(hours=2))]
    async with db.sessions() as s, s.begin():
        s.add_all([*rows, *inter, *states])


async def test_month_data_and_proposals(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await seed(db)
    service = KpiService(db, clock=lambda: datetime(2026, 12, 1, tzinfo=UTC))
    try:
        data = await month_data(service, "2026-11")
        assert (data.total.offered, data.total.answered) == (14, 9)
        low = data.by_halfhour["2026-11-04T09:00"]
        assert (low.offered, low.answered) == (10, 5)
        seats = [p.text for p in data.proposals if p.kind == "seats"]
        assert len(seats) == 1 and seats[0].startswith("2026-11-04T09:00: answer rate 50%")
        assert "1.0 operator(s) staffed" in seats[0] and "add" in seats[0]
        fcr = next(p.text for p in data.proposals if p.kind == "fcr")
        assert "garbage" in fcr  # 2 resolved of 9: the handed-on topic is named
        assert data.transfers == {"8123": 1}

        html_path, pdf_path = await write_report(service, "2026-11", tmp_path / "out")
        page = html_path.read_text(encoding="utf-8")
        assert page.count('src="data:image/png;base64,') == 5
        assert "add" in page and "Improvement proposals" in page
        pdf = pdf_path.read_bytes()
        assert pdf.startswith(b"%PDF")
        assert len(re.findall(rb"/Type /Page\b", pdf)) == 6  # summary + 5 charts
    finally:
        await db.close()


def test_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    state = tmp_path / "state"
    state.mkdir()
    settings = load_settings(config, state)

    async def prepare() -> None:
        db = Database(settings.database_url)
        await seed(db)
        await db.close()

    import asyncio

    asyncio.run(prepare())
    base = ["--config", str(config), "--state", str(state)]
    assert main([*base, "kpi", "--from", "2026-11-04", "--to", "2026-11-04", "--by", "hour"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-04T09" in out and "50.0%!" in out  # missed targets are marked
    assert main([*base, "staffing", "--from", "2026-11", "--json"]) == 0
    assert '"peak_positions"' in capsys.readouterr().out
    assert main([*base, "report", "--month", "2026-11", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report-2026-11.pdf").stat().st_size > 10_000
    assert main([*base, "report", "--month", "2026-11-04"]) == 2
