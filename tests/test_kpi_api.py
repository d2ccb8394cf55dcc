"""GET /api/kpi, /api/kpi/staffing and the interaction records API on the engine's app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from madoguchi.engine import Engine
from store.models import CallRecord

T0 = datetime(2026, 11, 2, 0, 10, tzinfo=UTC)  # 2026-11-02 09:10 Tokyo


def row(n: int, outcome: str, wait: float | None, talk: float | None = None,
        service: str = "city") -> CallRecord:
    offered = T0 + timedelta(minutes=n)
    queued = offered + timedelta(seconds=20)
    answered = queued + timedelta(seconds=wait or 0) if outcome == "answered" else None
    ended = (answered + timedelta(seconds=talk or 0) if answered
             else queued + timedelta(seconds=wait or 0))
    return CallRecord(id=f"c{n}", asterisk_uniqueid=f"u{n}", service=service, did="1000",
                      caller="0312345678", language="ja", flow_path="", topic="tax",
                      queue="city", agent_id="7001" if answered else None, offered_at=offered,
                      queued_at=queued, ring_at=None, answered_at=answered, ended_at=ended,
                      outcome=outcome, wait_s=wait, talk_s=talk, transfers="[]")


async def seed(engine: Engine) -> None:
    await engine.db.create_schema()
    async with engine.db.sessions() as s, s.begin():
        s.add_all([row(1, "answered", 4, 100), row(2, "answered", 15, 200),
                   row(3, "answered", 2, 50), row(4, "abandoned_waiting", 30),
                   row(5, "answered", 1, 10, service="english")])


async def test_interactions_validate_and_feed_fcr(
        api: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, engine, auth = api
    await seed(engine)
    assert (await client.get("/api/kpi")).status == 401  # the token is needed, as everywhere

    async def post(body: object) -> tuple[int, dict[str, object]]:
        resp = await client.post("/api/interactions", json=body, headers=auth)
        return resp.status, await resp.json()

    status, err = await post({"call_id": "c1", "topic": "tax", "outcome_class": "解決"})
    assert status == 422 and err["error"] == "invalid_interaction"
    assert "完了, 一部完了, 転送F, 取次, 転送, その他" in str(err["message"])
    status, err = await post({"call_id": "c3", "topic": "x", "outcome_class": "その他"})
    assert status == 422 and "city_staff, sales, wrong_number, one_ring" in str(err["message"])
    status, err = await post({"call_id": "c1", "topic": "x", "outcome_class": "完了",
                              "other_kind": "sales"})
    assert status == 422
    assert (await post({"call_id": "nope", "topic": "x", "outcome_class": "完了"}))[0] == 404
    status, err = await post({"call_id": "c4", "topic": "x", "outcome_class": "完了"})
    assert status == 422 and "not answered" in str(err["message"])

    status, created = await post({"call_id": "c1", "topic": "tax", "outcome_class": "完了",
                                  "text": "FAQ の通り回答", "faq_refs": ["faq-12"]})
    assert status == 201 and created["agent_id"] == "7001" and created["service"] == "city"
    assert (await post({"call_id": "c1", "topic": "tax", "outcome_class": "完了"}))[0] == 409
    status, _ = await post({"call_id": "c3", "topic": "x", "outcome_class": "その他",
                            "other_kind": "wrong_number"})
    assert status == 201

    resp = await client.get("/api/kpi?service=city&from=2026-11-02&to=2026-11-02&by=hour",
                            headers=auth)
    body = await resp.json()
    t = body["total"]
    assert (t["offered"], t["answered"], t["quick"], t["abandoned"]) == (4, 3, 2, 1)
    assert t["answer_rate"] == 0.75 and t["quick_answer_rate"] == round(2 / 3, 4)
    assert t["fcr"] == 0.5  # 完了 (c1) ÷ (3 answered − 1 その他); c2 has no record yet
    assert t["asa_s"] == 7.0 and t["aht_s"] == round(350 / 3, 1)
    assert [g["key"] for g in body["groups"]] == ["2026-11-02T09"]
    assert body["targets"] == {"answer_rate": 0.8, "quick_answer_rate": 0.8, "fcr": 0.5}

    everything = await (await client.get("/api/kpi?from=2026-11", headers=auth)).json()
    assert everything["total"]["offered"] == 5
    listed = await (await client.get("/api/interactions?from=2026-11-02",
                                     headers=auth)).json()
    assert [i["call_id"] for i in listed["interactions"]] == ["c1", "c3"]


async def test_bad_queries_are_json_errors(
        api: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, _, auth = api
    for query in ("by=week", "from=yesterday", "from=2026-11-03&to=2026-11-01",
                  "short_abandon_s=abc"):
        resp = await client.get(f"/api/kpi?{query}", headers=auth)
        assert resp.status == 400, query
        assert (await resp.json())["error"] == "bad_query"
    resp = await client.post("/api/interactions", data=b"[", headers=auth)
    assert resp.status == 400


async def test_staffing_from_history(api: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, engine, auth = api
    await seed(engine)
    resp = await client.get("/api/kpi/staffing?from=2026-11-02&to=2026-11-02", headers=auth)
    body = await resp.json()
    assert resp.status == 200 and body["days"] == 1
    assert body["slots"]["09:00"]["calls"] == 5 and body["slots"]["09:00"]["positions"] >= 1
