"""The FAX API as the console uses it: the inbox by role, the PDF served inline and as a
download, status transitions, the interaction record (outside the phone KPIs), sending with
its refusals, and every access in the audit log."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from console.auth import COOKIE, Console
from fax.indexer import Indexer, fax_id_of
from fax.models import FaxSent
from madoguchi.engine import Engine
from store.models import AuditEntry
from tests.console_users import user_with_role
from tests.fax_files import good_meta, pdf_bytes, write_meta, write_tiff
from tests.test_fax_sending import FakeSender

App = tuple[TestClient, Engine, Console]
SOURCE = "1764630000-7"


def _as(console: Console, role: str) -> dict[str, str]:
    s = console.sessions.create(user_with_role(console, role))
    return {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}


async def _received(engine: Engine) -> str:
    await engine.fax_jobs.stop()  # the engine's own passes stay out of the test's way
    spool = engine.fax.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif")
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE))
    await Indexer(engine.fax).run()
    return fax_id_of(SOURCE)


async def _audit(engine: Engine) -> list[tuple[str, str, str | None]]:
    async with engine.db.sessions() as session:
        rows = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action.startswith("fax")).order_by(AuditEntry.id))).all()
    return [(a.action, a.actor, a.call_id) for a in rows]


async def test_the_inbox_is_read_by_every_role_and_audited(app_client: App) -> None:
    client, engine, console = app_client
    fax_id = await _received(engine)
    city = _as(console, "city_viewer")
    resp = await client.get("/api/fax?number=0312&status=new&result=ok&from=2026-11-01",
                            headers=city)
    assert resp.status == 200
    (item,) = (await resp.json())["items"]
    assert item["id"] == fax_id and item["pdf_url"] == f"/api/fax/{fax_id}/pdf"
    assert (await (await client.get("/api/fax?status=done", headers=city)).json())[
        "items"] == []
    assert (await client.get("/api/fax?status=lost", headers=city)).status == 400
    assert (await client.get("/api/fax?from=yesterday", headers=city)).status == 400
    details = await (await client.get(f"/api/fax/{fax_id}", headers=city)).json()
    assert (details["caller"], details["interaction"]) == ("0312345678", None)
    pdf = await client.get(f"/api/fax/{fax_id}/pdf", headers=city)
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF-")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("inline")
    assert pdf.headers["Cache-Control"] == "private, no-store"
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    down = await client.get(f"/api/fax/{fax_id}/pdf?download=1", headers=city)
    assert down.headers["Content-Disposition"] == f'attachment; filename="fax-{fax_id}.pdf"'
    assert (await client.get(f"/api/fax/{'0' * 32}", headers=city)).status == 404
    assert (await client.get("/api/fax/..%2F..%2Fetc/pdf", headers=city)).status == 404
    assert await _audit(engine) == [
        ("fax_search", "city", None), ("fax_search", "city", None),
        ("fax_view", "city", fax_id), ("fax_read", "city", fax_id),
        ("fax_download", "city", fax_id)]
    # the city's viewers read; they neither take a FAX nor send one
    resp = await client.post(f"/api/fax/{fax_id}/status", json={"status": "in_progress"},
                             headers=city)
    assert resp.status == 403


async def test_status_follows_the_transition_table(app_client: App) -> None:
    client, engine, console = app_client
    fax_id = await _received(engine)
    op, sv = _as(console, "operator"), _as(console, "supervisor")
    url = f"/api/fax/{fax_id}/status"
    resp = await client.post(url, json={"status": "done"}, headers=op)
    assert resp.status == 409 and (await resp.json())["error"] == "transition_refused"
    resp = await client.post(url, json={"status": "in_progress"}, headers=op)
    body = await resp.json()
    assert resp.status == 200 and (body["status"], body["status_by"]) == ("in_progress", "op")
    assert datetime.fromisoformat(body["status_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert (await client.post(url, json={"status": "in_progress"}, headers=sv)).status == 409
    resp = await client.post(url, json={"status": "done"}, headers=sv)
    assert (await resp.json())["status_by"] == "sv"
    assert (await client.post(url, json={"status": "new"}, headers=sv)).status == 409
    assert (await client.post(url, json={"status": "archived"}, headers=sv)).status == 400
    assert ("fax_status", "sv", fax_id) in await _audit(engine)


async def test_the_interaction_record_is_the_fax_channel(app_client: App) -> None:
    client, engine, console = app_client
    fax_id = await _received(engine)
    op = _as(console, "operator")
    record = {"topic": "gomi", "outcome_class": "完了", "text": "回答をFAXで返送"}
    resp = await client.post(f"/api/fax/{fax_id}/interaction", json=record, headers=op)
    body = await resp.json()
    assert resp.status == 201 and (body["channel"], body["fax_id"]) == ("fax", fax_id)
    assert (await client.post(f"/api/fax/{fax_id}/interaction", json=record,
                              headers=op)).status == 409
    bad = {**record, "outcome_class": "その他"}  # needs its kind
    assert (await client.post(f"/api/fax/{fax_id}/interaction", json=bad,
                              headers=op)).status == 400
    details = await (await client.get(f"/api/fax/{fax_id}", headers=op)).json()
    assert details["interaction"]["topic"] == "gomi"
    # outside the phone KPIs: the KPI service does not see it
    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert await engine.kpi.interactions(start, start + timedelta(days=30)) == []
    assert ("fax_record", "op", fax_id) in await _audit(engine)


async def test_sending_refusals_queue_nothing(app_client: App) -> None:
    client, engine, console = app_client
    sender = FakeSender()
    engine.fax_outbox.sender = sender
    op = _as(console, "operator")

    def form(data: bytes, number: str, name: str = "doc.pdf") -> FormData:
        f = FormData()
        f.add_field("number", number)
        f.add_field("file", io.BytesIO(data), filename=name, content_type="application/pdf")
        return f

    limit = engine.fax.config.fax.max_upload_bytes
    cases = [(form(b"PK\x03\x04 a zip", "0120123456"), 400, "not_pdf"),
             (form(b"%PDF-" + b"0" * limit, "0120123456"), 413, "too_large"),
             (form(pdf_bytes(), "0312345678"), 422, "number_refused"),
             (form(pdf_bytes(), "99;Dial(x)"), 422, "number_refused")]
    for data, status, error in cases:
        resp = await client.post("/api/fax/send", data=data, headers=op)
        assert (resp.status, (await resp.json())["error"]) == (status, error)
    resp = await client.post("/api/fax/send", json={"number": "0120123456"}, headers=op)
    assert resp.status == 400
    assert sender.calls == []
    async with engine.db.sessions() as session:
        assert (await session.scalars(select(FaxSent))).all() == []
    resp = await client.post("/api/fax/send", data=form(pdf_bytes(), "0120-123-456"),
                             headers=op)
    body = await resp.json()
    assert resp.status == 202 and body["state"] == "sending" and body["pages"] == 1
    await engine.fax_outbox.settle()
    assert [c[0] for c in sender.calls] == [body["id"]]
    got = await (await client.get(f"/api/fax/sent/{body['id']}", headers=op)).json()
    assert got["number"] == "0120123456"
    pdf = await client.get(f"/api/fax/sent/{body['id']}/pdf", headers=op)
    assert (await pdf.read()).startswith(b"%PDF-")
    listed = await (await client.get("/api/fax/sent", headers=op)).json()
    assert [i["id"] for i in listed["items"]] == [body["id"]]
    assert [a[0] for a in await _audit(engine)] == [
        "fax_send", "fax_sent_view", "fax_sent_read", "fax_sent_search"]


async def test_the_fax_page_offers_what_the_role_may_do(app_client: App) -> None:
    client, _, console = app_client
    op = await (await client.get("/console/fax", headers=_as(console, "operator"))).text()
    assert 'id="fax-send"' in op and 'id="fax-take"' in op and 'id="nav-fax"' in op
    assert '<script src="/console/static/fax.js" defer></script>' in op
    city = await (await client.get("/console/fax", headers=_as(console, "city_viewer"))).text()
    assert 'id="fax-results"' in city and 'id="nav-fax"' in city
    assert 'id="fax-send"' not in city and 'id="fax-take"' not in city


async def test_an_answer_text_is_sent_as_a_pdf(app_client: App) -> None:
    client, engine, console = app_client
    sender = FakeSender()
    engine.fax_outbox.sender = sender
    op = _as(console, "operator")
    refused = await client.post("/api/fax/send-text", headers=op, json={
        "text": "粗大ごみは予約制です。", "number": "0312345678"})
    assert refused.status == 422 and sender.calls == []
    assert (await client.post("/api/fax/send-text", headers=op, json={
        "text": " ", "number": "0120123456"})).status == 400
    resp = await client.post("/api/fax/send-text", headers=op, json={
        "heading": "粗大ごみの出し方", "text": "粗大ごみは予約制です。\n" * 100,
        "number": "0120123456"})
    body = await resp.json()
    assert resp.status == 202 and body["pages"] == 3
    await engine.fax_outbox.settle()
    pdf = await (await client.get(f"/api/fax/sent/{body['id']}/pdf", headers=op)).read()
    assert pdf.startswith(b"%PDF-") and b"IPAexGothic" in pdf  # the font travels with it
    assert [c[0] for c in sender.calls] == [body["id"]]


async def test_indexing_passes_are_counted_in_the_metrics(app_client: App) -> None:
    client, engine, console = app_client
    await engine.fax_jobs.stop()  # this test runs the pass itself
    spool = engine.fax.paths.spool_in
    write_tiff(spool / f"{SOURCE}.tif")
    write_meta(spool / f"{SOURCE}.meta", **good_meta(SOURCE))
    write_meta(spool / "notes.meta", status="SUCCESS")  # not a name the dialplan makes
    await engine.fax_jobs.index()
    text = await (await client.get("/metrics", headers=_as(console, "supervisor"))).text()
    assert "madoguchi_fax_indexed_total 1.0" in text
    assert "madoguchi_fax_spool_problems 1.0" in text
