"""GET /api/kpi, /api/kpi/staffing and the interaction records API on the engine's app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from madoguchi.engine import Engine
from store.models import CallbackRow, CallRecord

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


def booked(n: int, state: str) -> CallbackRow:
    asked = T0 + timedelta(minutes=n, seconds=50)
    return CallbackRow(id=f"b{n}", call_id=f"c{n}", service="city", queue="city",
                       number="0901234567"[:-1] + str(n % 10), language="ja", topic="tax",
                       priority=0, queued_at=asked - timedelta(seconds=30), requested_at=asked,
                       state=state, attempts=1, not_before=None, last_status="",
                       agent_id="7001", result_call_id=None, updated_at=asked)


def ours(n: int, of: str, at: datetime) -> CallRecord:
    """The center's callback call, answered by the citizen at `at`."""
    r = row(n, "answered", 0, 60)
    r.outcome, r.callback_of, r.offered_at, r.answered_at = "callback", of, at, at
    r.queued_at, r.ended_at, r.wait_s = None, at + timedelta(seconds=60), None
    return r


async def test_callbacks_beside_the_answer_rate(
        api: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, engine, auth = api
    await seed(engine)  # city: 4 offered, 3 answered, 1 abandoned
    asked = T0 + timedelta(minutes=6, seconds=50)
    async with engine.db.sessions() as s, s.begin():
        s.add_all([row(n, "callback_requested", 30) for n in (6, 7, 8, 9)])
        s.add_all([booked(6, "done"), booked(7, "failed"), booked(8, "pending"),
                   booked(9, "expired")])
        # c6's callback reached the citizen 15 min after the request, the next day: it
        # counts for c6's day; and an older call's callback, made today, is nobody's offer
        s.add_all([ours(60, "c6", asked + timedelta(days=1, minutes=15)),
                   ours(61, "c0", T0 + timedelta(minutes=30))])
    resp = await client.get("/api/kpi?service=city&from=2026-11-02&to=2026-11-02",
                            headers=auth)
    body = await resp.json()
    t = body["total"]
    assert (t["offered"], t["answered"], t["abandoned"], t["callback_requested"]) == (
        8, 3, 1, 4)
    assert t["answer_rate"] == round(3 / 8, 4)  # a callback is not a live answer
    assert t["aht_s"] == round(350 / 3, 1)  # nothing of the callback calls' talk
    assert body["callbacks"] == {
        "requested": 4, "done": 1, "failed": 1, "expired": 1, "cancelled": 0, "pending": 1,
        "mean_to_reach_s": float(24 * 3600 + 15 * 60),
        "answer_rate_with_callbacks": round((3 + 1) / 8, 4)}
    # the next day holds only the callback call: nothing offered there
    nxt = await (await client.get("/api/kpi?from=2026-11-03&to=2026-11-03",
                                  headers=auth)).json()
    assert (nxt["total"]["offered"], nxt["total"]["answered"]) == (0, 0)
    assert nxt["callbacks"]["requested"] == 0
    assert nxt["callbacks"]["answer_rate_with_callbacks"] is None
    staffing = await (await client.get("/api/kpi/staffing?from=2026-11-02&to=2026-11-02",
                                       headers=auth)).json()
    assert staffing["slots"]["09:00"]["calls"] == 9  # 5 + 4 booked; no callback call
