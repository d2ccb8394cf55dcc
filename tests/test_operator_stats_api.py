"""GET /api/operator-stats sums talk time in SQL, differently on each backend (julianday on
SQLite, extract(epoch) on PostgreSQL): both give the same figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from harness.offline_engine import offline_engine
from madoguchi.web import make_app
from store.models import CallRecord

T0 = datetime(2026, 11, 2, 0, 10, tzinfo=UTC)  # 2026-11-02 09:10 Tokyo


def answered(n: int, agent: str, talk_s: float, at: datetime = T0) -> CallRecord:
    offered = at + timedelta(minutes=n)
    answered_at = offered + timedelta(seconds=30)
    return CallRecord(id=f"c{n}", asterisk_uniqueid=f"u{n}", service="city", did="1000",
                      caller="0312345678", language="ja", queue="city", agent_id=agent,
                      offered_at=offered, queued_at=offered, answered_at=answered_at,
                      ended_at=answered_at + timedelta(seconds=talk_s), outcome="answered",
                      wait_s=30.0, talk_s=talk_s)


async def test_operator_stats_on_each_backend(tmp_path: Path, database_url: str) -> None:
    engine = offline_engine(tmp_path)
    assert engine.db.url == database_url
    async with TestClient(TestServer(make_app(engine))) as client:
        await engine.db.add(answered(1, "7001", 61.5), answered(2, "7001", 30.25),
                            answered(3, "7002", 10.0),
                            answered(4, "7002", 99.0, T0 - timedelta(days=1)),
                            what="calls")
        resp = await client.get("/api/operator-stats?date=2026-11-02", headers={
            "Authorization": f"Bearer {engine.secrets.api_token}"})
        assert resp.status == 200
        assert await resp.json() == {"date": "2026-11-02", "operators": {
            "7001": {"calls": 2, "talk_s": 91.8}, "7002": {"calls": 1, "talk_s": 10.0}}}
