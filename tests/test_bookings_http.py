"""The bookings pages and API through the engine's app, on SQLite and PostgreSQL: a citizen
books and cancels without login; CSRF, rate limit, sizes, escaping; roles on the staff API;
the catalogue CSV import (errors by line, all or nothing); the participant list."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bookings.guard import RateLimit
from bookings.http import BOOKINGS
from bookings.models import Booking
from bookings.service import BookingService
from console.auth import COOKIE, Console
from madoguchi.engine import Engine
from madoguchi.ports import board_status
from store.models import AuditEntry
from tests.bookings_data import ADMIN, NOW, event, event_data
from tests.console_users import user_with_role

App = tuple[TestClient, Engine, Console]
CONSOLE_JS = (Path(__file__).resolve().parents[1] / "console" / "static" / "console.js"
              ).read_text(encoding="utf-8")
FORM = {"name": "山田 太郎", "furigana": "やまだ たろう", "phone": "03-1234-5678", "party": "1",
        "note": ""}


async def _setup(app: App, **over: Any) -> tuple[TestClient, BookingService, int]:
    client, engine, _ = app
    svc = engine.bookings
    svc.clock = lambda: NOW
    await svc.save_event(event(**over), ADMIN)
    sid = (await svc.event("yoga")).sessions[0].row.id
    return client, svc, sid


async def _token(client: TestClient, path: str = "/book/events/yoga") -> str:
    resp = await client.get(path)
    assert resp.status == 200
    found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found is not None
    return found.group(1)


async def _stored(svc: BookingService) -> int:
    async with svc.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Booking)) or 0)


def _staff(console: Console, role: str) -> dict[str, str]:
    s = console.sessions.create(user_with_role(console, role))
    return {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}


async def test_a_citizen_books_and_cancels_without_login(app_client: App) -> None:
    client, svc, sid = await _setup(app_client)
    short = await client.get("/book", allow_redirects=False)
    assert (short.status, short.headers["Location"]) == (301, "/book/")
    listing = await client.get("/book/")
    text = await listing.text()
    assert listing.status == 200 and "ヨガ教室" in text and "Yoga class" in text
    assert text.index("ヨガ教室") < text.index("Yoga class")  # Japanese first
    assert "script-src 'self'" in listing.headers["Content-Security-Policy"]
    page = await client.get("/book/events/yoga")
    body = await page.text()
    for label in ('<label for="name">', '<label for="phone">', '<label for="furigana">',
                  '<label for="party">', f'<label for="s{sid}">'):
        assert label in body
    token = await _token(client)
    resp = await client.post("/book/events/yoga", data={
        **FORM, "session_id": str(sid), "csrf": token,
        "name": "<script>alert(1)</script>太郎"})
    html = await resp.text()
    assert resp.status == 201, html
    number = re.search(r'id="booking-number">([^<]+)<', html)
    assert number is not None
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    async with svc.db.sessions() as s:
        row = (await s.scalars(select(Booking))).one()
    assert row.name == "<script>alert(1)</script>太郎" and row.channel == "web"
    assert row.phone == "0312345678"  # stored as text, compared by digits
    # the wrong phone tells nothing; the right one cancels
    token = await _token(client, "/book/cancel")
    wrong = await client.post("/book/cancel", data={"number": number.group(1),
                                                    "phone": "0399999999", "csrf": token})
    assert wrong.status == 404 and "申込番号と電話番号に合う申込がありません" in await wrong.text()
    done = await client.post("/book/cancel", data={"number": number.group(1).lower(),
                                                   "phone": "0312345678", "csrf": token})
    assert done.status == 200 and "取り消しました" in await done.text()
    async with svc.db.sessions() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("booking_%")).order_by(AuditEntry.id))).all()
    assert actions == ["booking_book", "booking_cancel"]


async def test_a_post_without_the_form_token_is_refused(app_client: App) -> None:
    client, svc, sid = await _setup(app_client)
    await _token(client)  # the cookie is set, the token not sent
    resp = await client.post("/book/events/yoga", data={**FORM, "session_id": str(sid)})
    assert resp.status == 403 and "reload the page" in await resp.text()
    forged = await client.post("/book/events/yoga", data={
        **FORM, "session_id": str(sid), "csrf": "0" * 64})
    assert forged.status == 403
    # a token of another browser's cookie does not fit this cookie
    theirs = client.app[BOOKINGS].csrf.token("another-browsers-cookie")
    crossed = await client.post("/book/events/yoga", data={
        **FORM, "session_id": str(sid), "csrf": theirs})
    assert crossed.status == 403
    assert await _stored(svc) == 0


async def test_bad_input_is_a_clear_400_and_nothing_is_stored(app_client: App) -> None:
    client, svc, sid = await _setup(app_client)
    token = await _token(client)
    cases = [{"name": "x" * 101}, {"phone": "12"}, {"phone": "<b>"}, {"party": "-1"},
             {"party": "１"}, {"name": ""}, {"note": "n" * 501}, {"session_id": "abc"},
             {"name": "a\x07b"}]
    for bad in cases:
        resp = await client.post("/book/events/yoga", data={
            **FORM, "session_id": str(sid), "csrf": token, **bad})
        assert resp.status == 400, (bad, resp.status)
        assert 'role="alert"' in await resp.text()
    as_json = await client.post("/book/events/yoga", json={**FORM, "csrf": token})
    assert as_json.status == 400
    huge = await client.post("/book/events/yoga", data={
        **FORM, "session_id": str(sid), "csrf": token, "note": "n" * 70_000})
    assert huge.status == 413
    assert await _stored(svc) == 0


async def test_a_full_session_and_a_closed_window_are_clear(app_client: App) -> None:
    client, svc, sid = await _setup(app_client, capacity=1, waiting_list=False)
    token = await _token(client)
    ok = await client.post("/book/events/yoga", data={**FORM, "session_id": str(sid),
                                                      "csrf": token})
    assert ok.status == 201
    full = await client.post("/book/events/yoga", data={
        **FORM, "session_id": str(sid), "csrf": token, "phone": "0311112222"})
    assert full.status == 409 and "定員に達しました" in await full.text()
    again = await client.post("/book/events/yoga", data={**FORM, "session_id": str(sid),
                                                         "csrf": token})
    assert again.status == 409  # the same phone twice: nothing stored twice
    assert await _stored(svc) == 1


async def test_writes_past_the_limit_get_a_429(app_client: App) -> None:
    client, svc, sid = await _setup(app_client)
    client.app[BOOKINGS].writes = RateLimit(3)
    token = await _token(client)
    statuses = []
    for i in range(5):
        resp = await client.post("/book/events/yoga", data={
            **FORM, "session_id": str(sid), "csrf": token, "phone": f"031111000{i}"})
        statuses.append(resp.status)
    assert statuses == [201, 201, 201, 429, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    assert "too many requests" in await resp.text()
    assert await _stored(svc) == 3


async def test_the_board_shows_on_the_page_and_stops_bookings(app_client: App) -> None:
    client, svc, _sid = await _setup(app_client, board_event="yoga-2027")
    svc.board = {"yoga-2027": "cancelled"}.get
    page = await client.get("/book/events/yoga")
    text = await page.text()
    assert "中止" in text and "cancelled" in text and 'name="session_id"' not in text
    fake = SimpleNamespace(board=SimpleNamespace(events=[SimpleNamespace(
        id="yoga-2027", status="postponed")]))
    assert board_status(fake)("yoga-2027") == "postponed"  # type: ignore[arg-type]
    assert board_status(fake)("other") is None  # type: ignore[arg-type]


async def test_staff_roles_on_the_catalogue_and_the_desk(app_client: App) -> None:
    client, _svc, sid = await _setup(app_client)
    _, engine, console = app_client
    data = event_data("taiso", capacity=4)
    op = await client.post("/api/bookings/events", json=data, headers=_staff(console,
                                                                             "operator"))
    assert op.status == 403
    sv = await client.post("/api/bookings/events", json=data,
                           headers=_staff(console, "supervisor"))
    assert sv.status == 201, await sv.text()
    assert (await sv.json())["sessions"][0]["capacity"] == 4
    operator = _staff(console, "operator")
    booked = await client.post("/api/bookings", headers=operator, json={
        **FORM, "session_id": sid, "party": 2, "call_id": "c-42"})
    assert booked.status == 201, await booked.text()
    number = (await booked.json())["number"]
    found = await client.get("/api/bookings/search", params={"phone": "0312345678"},
                             headers=operator)
    assert [b["number"] for b in (await found.json())["bookings"]] == [number]
    changed = await client.post(f"/api/bookings/{number}/change", json={"party": 1},
                                headers=operator)
    assert changed.status == 200 and (await changed.json())["party"] == 1
    listing = await client.get(f"/api/bookings/sessions/{sid}/participants.csv",
                               headers=_staff(console, "city_viewer"))
    csv_text = (await listing.read()).decode("utf-8-sig")
    assert listing.status == 200 and number in csv_text and "山田 太郎" in csv_text
    refused = await client.get(f"/api/bookings/sessions/{sid}/participants.csv",
                               headers=operator)
    assert refused.status == 403
    cancelled = await client.post(f"/api/bookings/{number}/cancel", headers=operator)
    assert cancelled.status == 200 and (await cancelled.json())["status"] == "cancelled"
    counts = await (await client.get("/api/bookings/counts",
                                     headers=_staff(console, "admin"))).json()
    assert counts["by_channel"]["desk"]["cancelled"] == 1
    async with engine.db.sessions() as s:
        rows = (await s.execute(select(AuditEntry.action, AuditEntry.actor,
                                       AuditEntry.call_id).where(
            AuditEntry.action.like("booking_%")).order_by(AuditEntry.id))).all()
    assert [tuple(r) for r in rows] == [
        ("booking_book", "op", "c-42"), ("booking_search", "op", None),
        ("booking_change", "op", "c-42"), ("booking_list", "city", None),
        ("booking_cancel", "op", "c-42")]


HEADER = ("id,title_ja,title_en,rule,opens_at,closes_at,starts_at,ends_at,venue_ja,venue_en,"
          "capacity\n")


async def test_a_catalogue_csv_with_a_bad_line_imports_nothing(app_client: App) -> None:
    client, svc, _ = await _setup(app_client)
    _, _, console = app_client
    good = ("haiku,俳句講座,Haiku,first_come,2027-04-01T09:00,2027-04-20T17:00,"
            "2027-05-01T10:00,2027-05-01T12:00,公民館,Community hall,20\n"
            "haiku,俳句講座,Haiku,first_come,2027-04-01T09:00,2027-04-20T17:00,"
            "2027-05-08T10:00,2027-05-08T12:00,公民館,Community hall,20\n")
    bad = ("kendo,剣道,Kendo,raffle,2027-04-01T09:00,2027-04-20T17:00,"
           "2027-05-01T10:00,2027-05-01T12:00,体育館,Gym,10\n"
           "judo,柔道,Judo,lottery,2027-04-01T09:00,2027-04-20T17:00,"
           "2027-05-01T10:00,2027-05-01T09:00,体育館,Gym,10\n")
    headers = {**_staff(console, "supervisor"), "Content-Type": "text/csv"}
    resp = await client.post("/api/bookings/import", data=(HEADER + good + bad).encode(),
                             headers=headers)
    body = await resp.json()
    assert resp.status == 422, body
    assert [(e["line"], e["field"]) for e in body["errors"]] == [
        (4, "rule"), (5, "sessions[0].ends_at")]
    assert [v.row.id for v in await svc.events(public=False)] == ["yoga"]
    ok = await client.post("/api/bookings/import", data=(HEADER + good).encode("cp932"),
                           headers=headers)
    assert ok.status == 200 and (await ok.json()) == {"imported": 1}
    haiku = await svc.event("haiku")
    assert len(haiku.sessions) == 2 and haiku.row.title_en == "Haiku"
    op = await client.post("/api/bookings/import", data=(HEADER + good).encode(),
                           headers={**_staff(console, "operator"), "Content-Type": "text/csv"})
    assert op.status == 403


async def test_the_console_page_prefills_the_caller_for_the_desk(app_client: App) -> None:
    client, _, console = app_client
    page = await client.get("/console/bookings", params={"caller": "0312345678",
                                                         "call": "c-42"},
                            headers=_staff(console, "operator"))
    text = await page.text()
    assert page.status == 200 and 'data-caller="0312345678"' in text
    assert 'data-call="c-42"' in text and 'id="bk-event"' not in text  # no catalogue form
    odd = await client.get("/console/bookings", params={"caller": '"><script>'},
                           headers=_staff(console, "supervisor"))
    text = await odd.text()
    assert 'data-caller=""' in text and 'id="bk-event"' in text


async def test_the_desk_links_the_caller_on_the_line_to_the_bookings_page(
        app_client: App) -> None:
    client, _, console = app_client
    op = _staff(console, "operator")
    page = await (await client.get("/console/desk", headers=op)).text()
    # hidden until a call is on the desk; a new tab, so the desk stays open beside it
    assert ('<a id="call-book" href="/console/bookings" target="_blank" rel="noopener" '
            'hidden>講座の申込</a>') in page
    page = await (await client.get("/console/desk?lang=en", headers=op)).text()
    assert 'rel="noopener" hidden>Book a course</a>' in page
    # the page's own parameters, which the bookings page pre-fills and links to the call
    assert ('"/console/bookings?" + new URLSearchParams({ caller: c.caller, '
            'call: c.call_id })') in CONSOLE_JS


async def test_the_participant_list_as_pdf(app_client: App) -> None:
    client, _svc, sid = await _setup(app_client)
    _, _, console = app_client
    token = await _token(client)
    await client.post("/book/events/yoga", data={**FORM, "session_id": str(sid),
                                                 "csrf": token, "name": "$x^2$ 山田"})
    resp = await client.get(f"/api/bookings/sessions/{sid}/participants.pdf",
                            headers=_staff(console, "city_viewer"))
    body = await resp.read()
    assert resp.status == 200 and body.startswith(b"%PDF")
    assert resp.headers["Content-Type"] == "application/pdf"


async def test_the_city_viewer_sees_lists_and_counts_not_the_desk(app_client: App) -> None:
    client, _, console = app_client
    page = await client.get("/console/bookings", headers=_staff(console, "city_viewer"))
    text = await page.text()
    assert page.status == 200 and 'id="bk-counts"' in text
    assert 'id="bk-book"' not in text and 'id="bk-search"' not in text
    desk = await (await client.get("/console/bookings",
                                   headers=_staff(console, "operator"))).text()
    assert 'id="bk-counts"' not in desk and 'id="bk-book"' in desk
