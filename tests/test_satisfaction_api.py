"""Satisfaction through the engine's app, on SQLite and PostgreSQL: marking a connected call
for the post-call survey (the operator on it, supervisors; over AMI), storing the answers the
IVR hands on, the scores in /api/kpi, the city staff's monthly ratings with their roles, and
the survey answers in the retention purge, the handover export and erasure."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from acd.service import Ring
from ami_bridge.ami_errors import AmiDisconnected
from ami_bridge.dialplan import Var
from console.auth import COOKIE, Console
from core.calls import Call
from ivr.survey import Answer, SurveyResult
from madoguchi.engine import Engine
from recordings.export import export
from recordings.lifecycle import erase_all, purge
from store.models import StaffRating, SurveyAnswer
from tests.console_users import user_with_role

App = tuple[TestClient, Engine, Console]
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
T0 = datetime(2026, 11, 2, 0, 10, tzinfo=UTC)  # 09:10 Tokyo


def headers(console: Console, role: str) -> dict[str, str]:
    s = console.sessions.create(user_with_role(console, role))
    return {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}


class Ami:
    """Takes every action, or refuses them all as if the link were down."""

    def __init__(self, down: bool = False) -> None:
        self.actions: list[dict[str, str]] = []
        self.down = down

    async def send(self, action: Mapping[str, str],
                   timeout: float | None = None) -> dict[str, str]:
        if self.down:
            raise AmiDisconnected("not logged in")
        self.actions.append(dict(action))
        return {"Response": "Success"}


def connected_call(engine: Engine, agent: str = "7001", n: int = 1) -> Call:
    """A live call the ACD has connected to `agent`."""
    call = engine.tracker.offer(f"1700000000.{n}", f"PJSIP/trunk-{n:08x}", "city", "1000",
                                "0312345678")
    call.answer(agent, engine.tracker.clock())
    engine.acd.talking[f"leg{n}"] = Ring(f"leg{n}", engine.acd.agents[agent], call)
    return call


# ---- marking a call -------------------------------------------------------------------------

async def test_the_operator_on_the_call_and_supervisors_mark_it(app_client: App) -> None:
    client, engine, console = app_client
    ami = Ami()
    engine.survey.ami = ami
    mine, theirs = connected_call(engine, "7001", 1), connected_call(engine, "7002", 2)
    op = headers(console, "operator")  # extension 7001
    resp = await client.post(f"/api/calls/{mine.id}/survey", headers=op)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"call_id": mine.id, "survey": True, "agent_id": "7001"}
    assert ami.actions == [{"Action": "Setvar", "Channel": mine.channel,
                            "Variable": Var.SURVEY, "Value": "1"}]
    resp = await client.post(f"/api/calls/{theirs.id}/survey", headers=op)
    assert resp.status == 403 and (await resp.json())["error"] == "not_your_call"
    for role in ("supervisor", "admin"):
        resp = await client.post(f"/api/calls/{theirs.id}/survey", headers=headers(console, role))
        assert resp.status == 200
    resp = await client.post(f"/api/calls/{theirs.id}/survey",
                             headers=headers(console, "city_viewer"))
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
    assert len(ami.actions) == 3  # the refused ones set nothing


async def test_only_a_connected_live_call_is_marked(app_client: App) -> None:
    client, engine, console = app_client
    engine.survey.ami = Ami()
    sv = headers(console, "supervisor")
    resp = await client.post("/api/calls/nosuchcall/survey", headers=sv)
    assert resp.status == 404 and (await resp.json())["error"] == "call_not_found"
    waiting = engine.tracker.offer("1700000000.9", "PJSIP/trunk-00000009", "city", "1000", "")
    resp = await client.post(f"/api/calls/{waiting.id}/survey", headers=sv)
    assert resp.status == 409 and (await resp.json())["error"] == "not_connected"
    call = connected_call(engine)
    engine.acd.talking.clear()  # the operator hung up: the survey has started or not
    resp = await client.post(f"/api/calls/{call.id}/survey", headers=sv)
    assert resp.status == 409


async def test_asterisk_away_is_a_503_to_try_again(app_client: App) -> None:
    client, engine, console = app_client
    engine.survey.ami = Ami(down=True)
    call = connected_call(engine)
    resp = await client.post(f"/api/calls/{call.id}/survey", headers=headers(console, "operator"))
    assert resp.status == 503 and (await resp.json())["error"] == "survey_mark_failed"


# ---- answers and scores ---------------------------------------------------------------------

def result(call_id: str, agent: str | None, values: list[int | None], offered: datetime = T0,
           service: str = "city") -> SurveyResult:
    questions = ("overall", "clarity", "speed")
    return SurveyResult(call_id, service, agent, "en", offered,
                        tuple(Answer(q, i, v) for i, (q, v) in
                              enumerate(zip(questions, values, strict=False), 1)))


async def test_answers_are_stored_once_and_scored_in_the_kpis(app_client: App) -> None:
    client, engine, console = app_client
    await engine._survey_answered(result("c1", "7001", [4, 5]))
    await engine._survey_answered(result("c1", "7001", [1, 1]))  # a repeat: the first stands
    await engine._survey_answered(result("c2", "7002", [2, None], T0 + timedelta(days=1),
                                         "water"))
    async with engine.db.sessions() as s:
        rows = (await s.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id))).all()
    assert [(r.call_id, r.question, r.answer, r.agent_id) for r in rows] == [
        ("c1", "overall", 4, "7001"), ("c1", "clarity", 5, "7001"),
        ("c2", "overall", 2, "7002"), ("c2", "clarity", None, "7002")]
    # counted once, like the rows: score over a range = Δ points ÷ Δ answers
    sample = engine.metrics.registry.get_sample_value
    assert sample("madoguchi_survey_answers_total", {"service": "city", "answer": "4"}) == 1
    assert sample("madoguchi_survey_answers_total", {"service": "city", "answer": "1"}) is None
    assert sample("madoguchi_survey_points_total", {"service": "city"}) == 75 + 100
    assert sample("madoguchi_survey_points_total", {"service": "water"}) == 25

    sv = headers(console, "supervisor")
    resp = await client.get("/api/kpi?from=2026-11&by=day", headers=sv)
    assert resp.status == 200
    body = await resp.json()
    sat = body["satisfaction"]
    assert body["satisfaction_targets"] == {"citizen": 70.0, "staff": 80.0}
    # (75 + 100 + 25) / 3: every answered question counts, the unanswered one does not
    assert sat["citizen"] == {"score": 66.7, "target": 70.0, "met": False, "responses": 2,
                              "surveyed": 2, "answers": 3, "unanswered": 1, "low": 1,
                              "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}
    assert sat["by_operator"]["7001"]["score"] == 87.5
    assert sat["by_operator"]["7002"]["score"] == 25.0
    assert sat["by_service"]["water"]["met"] is False
    groups = {g["key"]: g for g in body["groups"]}
    assert groups["2026-11-02"]["satisfaction"]["score"] == 87.5
    assert groups["2026-11-03"]["satisfaction"]["answers"] == 1
    assert groups["2026-11-03"]["offered"] == 0  # answers of calls not stored yet: a group
    resp = await client.get("/api/kpi?from=2026-11&service=city", headers=sv)
    assert (await resp.json())["satisfaction"]["citizen"]["score"] == 87.5
    resp = await client.get("/api/kpi?from=2026-10&to=2026-10", headers=sv)
    assert (await resp.json())["satisfaction"]["citizen"]["score"] is None


# ---- staff satisfaction ---------------------------------------------------------------------

async def test_city_viewers_and_admins_rate_a_month(app_client: App) -> None:
    client, engine, console = app_client
    engine.survey.clock = lambda: NOW
    city, admin = headers(console, "city_viewer"), headers(console, "admin")
    resp = await client.post("/api/staff-satisfaction", headers=city,
                             json={"month": "2026-11", "rating": 4, "comment": "丁寧な対応"})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert (body["points"], body["given"], body["scale"], body["rater"]) == (75.0, 4, 5, "city")
    resp = await client.post("/api/staff-satisfaction", headers=city,
                             json={"month": "2026-11", "points": 90, "comment": "改善あり"})
    assert resp.status == 200  # the rater's month again: replaced
    resp = await client.post("/api/staff-satisfaction", headers=admin,
                             json={"month": "2026-11", "points": 60})
    assert resp.status == 201
    for role in ("supervisor", "operator"):
        resp = await client.post("/api/staff-satisfaction", headers=headers(console, role),
                                 json={"month": "2026-11", "points": 100})
        assert resp.status == 403 and (await resp.json())["error"] == "forbidden"

    resp = await client.get("/api/staff-satisfaction?month=2026-11",
                            headers=headers(console, "supervisor"))
    body = await resp.json()
    assert (body["score"], body["met"], body["target"], body["ratings_count"]) == (
        75.0, False, 80.0, 2)
    assert [r["comment"] for r in body["ratings"]] == ["改善あり", ""]
    assert all("rater" not in r for r in body["ratings"])  # the contractor sees no names
    resp = await client.get("/api/staff-satisfaction?month=2026-11", headers=city)
    assert {r["rater"] for r in (await resp.json())["ratings"]} == {"city", "admin"}
    resp = await client.get("/api/staff-satisfaction", headers=city)  # this month
    assert (await resp.json())["month"] == "2026-11"
    resp = await client.get("/api/staff-satisfaction?month=2026-10", headers=city)
    assert (await resp.json())["score"] is None
    resp = await client.get("/api/staff-satisfaction", headers=headers(console, "operator"))
    assert resp.status == 403

    # in the KPIs: the months the period touches
    resp = await client.get("/api/kpi?from=2026-11-15&to=2026-11-16",
                            headers=headers(console, "supervisor"))
    staff = (await resp.json())["satisfaction"]["staff"]
    assert staff == {"score": 75.0, "target": 80.0, "met": False, "ratings": 2,
                     "months": ["2026-11"]}


async def test_a_rating_is_checked_field_by_field(app_client: App) -> None:
    client, engine, console = app_client
    engine.survey.clock = lambda: NOW
    city = headers(console, "city_viewer")

    async def refused(body: object) -> str:
        resp = await client.post("/api/staff-satisfaction", headers=city, json=body)
        assert resp.status == 422, (body, resp.status)
        err = await resp.json()
        assert err["error"] == "invalid_rating"
        return str(err["field"])

    assert await refused({}) == "month"
    assert await refused({"month": "2026-13", "points": 50}) == "month"
    assert await refused({"month": "２０２６-11", "points": 50}) == "month"
    assert await refused({"month": "2026-12", "points": 50}) == "month"  # not begun
    assert await refused({"month": "2026-11"}) == "points"
    assert await refused({"month": "2026-11", "points": 50, "rating": 3}) == "points"
    assert await refused({"month": "2026-11", "points": 101}) == "points"
    assert await refused({"month": "2026-11", "points": True}) == "points"
    assert await refused({"month": "2026-11", "points": 50.5}) == "points"
    assert await refused({"month": "2026-11", "rating": 0}) == "rating"
    assert await refused({"month": "2026-11", "rating": 6}) == "rating"
    assert await refused({"month": "2026-11", "rating": 3, "comment": "x" * 2001}) == "comment"
    assert await refused({"month": "2026-11", "rating": 3, "comment": 5}) == "comment"
    assert await refused({"month": "2026-11", "rating": 3, "who": "me"}) == "who"
    resp = await client.get("/api/staff-satisfaction?month=11-2026", headers=city)
    assert resp.status == 400 and (await resp.json())["error"] == "bad_query"
    async with engine.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(StaffRating)) == 0


# ---- personal data: purge, export, erase ------------------------------------------------------

async def test_survey_answers_follow_their_calls_out(app_client: App, tmp_path: Path) -> None:
    _, engine, _ = app_client
    recordings = engine.recordings
    old, recent = recordings.clock() - timedelta(days=400), recordings.clock() - timedelta(days=1)
    await engine._survey_answered(result("old", "7001", [5, 4], old))
    await engine._survey_answered(result("new", "7001", [3], recent))

    out = tmp_path / "handover.tar"
    summary = await export(recordings, recent - timedelta(hours=1),
                                   recent + timedelta(hours=1), out)
    assert summary.tables["survey_answers"] == 1
    with tarfile.open(out) as tar:
        member = tar.extractfile("tables/survey_answers.jsonl")
        assert member is not None
        rows = [json.loads(line) for line in member.read().decode().splitlines()]
    assert [(r["call_id"], r["answer"]) for r in rows] == [("new", 3)]

    dry = await purge(recordings, dry_run=True)
    assert dry.other_rows == {"survey_answers": 2}
    done = await purge(recordings)
    assert done.other_rows == {"survey_answers": 2}
    async with engine.db.sessions() as s:
        assert (await s.scalars(select(SurveyAnswer.call_id))).all() == ["new"]
    erased = await erase_all(recordings)
    assert erased.other_rows["survey_answers"] == 1
    async with engine.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(SurveyAnswer)) == 0
