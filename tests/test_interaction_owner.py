"""Who may write a call's interaction record: an operator only for a call they answered,
in their own name; supervisors, admins and the API token for any answered call; the
agent_id always a known operator's extension."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.auth import COOKIE, Console, ConsoleConfig
from console.http import CONSOLE
from console.models import ConsoleUser
from harness.offline_engine import offline_engine
from madoguchi.engine import Engine
from madoguchi.web import make_app
from store.models import CallRecord

T0 = datetime(2026, 11, 2, 0, 10, tzinfo=UTC)
App = tuple[TestClient, Engine, Console]


def answered(n: int, agent: str) -> CallRecord:
    offered = T0 + timedelta(minutes=n)
    answered_at = offered + timedelta(seconds=20)
    return CallRecord(id=f"c{n}", asterisk_uniqueid=f"u{n}", service="city", did="1000",
                      caller="0312345678", language="ja", flow_path="", topic="tax",
                      queue="city", agent_id=agent, offered_at=offered,
                      queued_at=offered, ring_at=None, answered_at=answered_at,
                      ended_at=answered_at + timedelta(seconds=60), outcome="answered",
                      wait_s=20, talk_s=60, transfers="[]")


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[App]:
    engine = offline_engine(tmp_path)
    client = TestClient(TestServer(make_app(engine, ConsoleConfig())))
    await client.start_server()
    async with engine.db.sessions() as s, s.begin():
        s.add_all([answered(1, "7001"), answered(2, "7002"), answered(3, "7003"),
                   answered(4, "7004")])
    try:
        yield client, engine, client.app[CONSOLE]
    finally:
        await client.close()


def _login(console: Console, role: str, agent: str | None = None) -> dict[str, str]:
    s = console.sessions.create(ConsoleUser(name=f"{role}{agent or ''}", role=role,
                                            password_hash="", agent_id=agent, disabled=False,
                                            created_at=datetime.now(UTC)))
    return {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}


def _record(call_id: str, **extra: str) -> dict[str, str]:
    return {"call_id": call_id, "topic": "tax", "outcome_class": "完了", **extra}


async def test_an_operator_records_only_calls_they_answered(app_client: App) -> None:
    client, _, console = app_client
    op1, op2 = _login(console, "operator", "7001"), _login(console, "operator", "7002")
    # another operator's call: refused, and the real record is not blocked by a forgery
    resp = await client.post("/api/interactions", json=_record("c2"), headers=op1)
    assert resp.status == 403 and (await resp.json())["error"] == "not_your_call"
    resp = await client.post("/api/interactions", json=_record("c2"), headers=op2)
    assert resp.status == 201 and (await resp.json())["agent_id"] == "7002"
    # their own call, but in another operator's name: refused
    resp = await client.post("/api/interactions", json=_record("c1", agent_id="7002"),
                             headers=op1)
    assert resp.status == 403 and (await resp.json())["error"] == "not_your_call"
    resp = await client.post("/api/interactions", json=_record("c1", agent_id="7001"),
                             headers=op1)
    assert resp.status == 201 and (await resp.json())["agent_id"] == "7001"


async def test_supervisors_admins_and_the_token_record_any_answered_call(
        app_client: App) -> None:
    client, engine, console = app_client
    resp = await client.post("/api/interactions", json=_record("c3"),
                             headers=_login(console, "supervisor"))
    assert resp.status == 201 and (await resp.json())["agent_id"] == "7003"
    resp = await client.post("/api/interactions", json=_record("c4", agent_id="7002"),
                             headers=_login(console, "admin"))
    assert resp.status == 201 and (await resp.json())["agent_id"] == "7002"
    resp = await client.post("/api/interactions", json=_record("c1"), headers={
        "Authorization": f"Bearer {engine.secrets.api_token}"})
    assert resp.status == 201


async def test_agent_id_must_name_a_known_operator(app_client: App) -> None:
    client, engine, console = app_client
    token = {"Authorization": f"Bearer {engine.secrets.api_token}"}
    for who in (_login(console, "supervisor"), token):
        for agent in ("9999", "７００１", "70 01", "x"):
            resp = await client.post("/api/interactions", json=_record("c1", agent_id=agent),
                                     headers=who)
            body = await resp.json()
            assert resp.status == 422 and body["error"] == "invalid_interaction", agent
            assert "known operator" in body["message"]
    # nothing was written: the right record still goes in
    resp = await client.post("/api/interactions", json=_record("c1"), headers=token)
    assert resp.status == 201
