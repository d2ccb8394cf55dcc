"""BookingService on SQLite and PostgreSQL: never more confirmed seats than capacity under
200 simultaneous bookings, the waiting list promoted on cancel, the lottery drawn once with
its seed in the audit log, refusals that store nothing, and the retention purge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bookings import errors
from bookings.allocation import Status
from bookings.models import Booking, BookingSession
from bookings.service import BookingService
from store.db import Database
from store.models import AuditEntry
from tests.bookings_data import ADMIN, DESK, IVR, NOW, WEB, event, request


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.at


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[tuple[BookingService, Clock]]:
    db = Database(database_url)
    await db.create_schema()
    clock = Clock()
    board: dict[str, str] = {}
    svc = BookingService(db, clock, board.get)
    svc.board_entries = board  # type: ignore[attr-defined]
    try:
        yield svc, clock
    finally:
        await db.close()


async def _session_id(svc: BookingService, event_id: str = "yoga") -> int:
    view = await svc.event(event_id)
    return view.sessions[0].row.id


async def _count(svc: BookingService, *where: object) -> int:
    async with svc.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Booking).where(
            *where)) or 0)  # type: ignore[arg-type]


async def test_200_simultaneous_bookings_for_10_seats_confirm_exactly_10(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(capacity=10, waiting_list=True), ADMIN)
    sid = await _session_id(svc)

    async def one(i: int) -> str:
        try:
            found = await svc.book(request(sid, phone=f"090{i:08d}"), WEB)
        except errors.SessionFull:
            return "full"
        return found.booking.status

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert results.count("confirmed") == 10
    assert results.count("waiting") == 190
    assert await _count(svc, Booking.status == "confirmed") == 10
    async with svc.db.sessions() as s:
        sess = await s.get(BookingSession, sid)
        assert sess is not None and sess.taken == 10


async def test_200_simultaneous_bookings_without_waiting_list_refuse_the_rest(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(capacity=10, waiting_list=False), ADMIN)
    sid = await _session_id(svc)

    async def one(i: int) -> str:
        try:
            return (await svc.book(request(sid, phone=f"080{i:08d}", party=1 + i % 2),
                                   WEB)).booking.status
        except errors.SessionFull:
            return "full"

    results = await asyncio.gather(*(one(i) for i in range(200)))
    async with svc.db.sessions() as s:
        seats = await s.scalar(select(func.sum(Booking.party)).where(
            Booking.status == "confirmed"))
        sess = await s.get(BookingSession, sid)
    assert seats == sess.taken <= 10 and seats >= 9  # type: ignore[union-attr]
    assert results.count("full") == 200 - results.count("confirmed")
    assert await _count(svc) == results.count("confirmed")  # refused: nothing stored


async def test_a_cancel_promotes_the_waiting_list_in_order(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(capacity=2), ADMIN)
    sid = await _session_id(svc)
    a = await svc.book(request(sid, phone="0300000001", party=2), WEB)
    w1 = await svc.book(request(sid, phone="0300000002", party=2), DESK)
    w2 = await svc.book(request(sid, phone="0300000003", party=1), IVR)
    assert (a.booking.status, w1.booking.status, w2.booking.status) == (
        "confirmed", "waiting", "waiting")
    with pytest.raises(errors.BookingNotFound):  # the right number with another phone
        await svc.cancel(a.booking.number, "0399999999", WEB)
    done = await svc.cancel(a.booking.number, "0300000001", WEB)
    assert done.booking.status == "cancelled" and done.session.taken == 2
    assert (await svc.lookup(w1.booking.number, "0300000002")).booking.status == "confirmed"
    assert (await svc.lookup(w2.booking.number, "0300000003")).booking.status == "waiting"
    with pytest.raises(errors.AlreadyCancelled):
        await svc.cancel(a.booking.number, "0300000001", WEB)
    async with svc.db.sessions() as s:
        audit = (await s.scalars(select(AuditEntry.detail).where(
            AuditEntry.action.like("booking_%")).order_by(AuditEntry.id))).all()
    assert [d.split()[0] for d in audit] == ["channel=web", "channel=desk", "channel=ivr",
                                             "channel=web", "channel=web"]
    assert any(f"number={w1.booking.number}" in d and "by=cancellation" in d for d in audit)


async def test_refusals_store_nothing(service: tuple[BookingService, Clock]) -> None:
    svc, clock = service
    await svc.save_event(event(capacity=5, residents_only=True, min_age=18, max_age=64,
                               max_party=2), ADMIN)
    sid = await _session_id(svc)
    with pytest.raises(errors.NotEligible):
        await svc.book(request(sid, resident=False, age=30), WEB)
    with pytest.raises(errors.NotEligible):
        await svc.book(request(sid, age=None), WEB)
    with pytest.raises(errors.NotEligible):
        await svc.book(request(sid, age=70), WEB)
    with pytest.raises(errors.InvalidField):
        await svc.book(request(sid, age=30, party=3), WEB)
    with pytest.raises(errors.SessionNotFound):
        await svc.book(request(sid + 100, age=30), WEB)
    ok = await svc.book(request(sid, age=30), WEB)
    with pytest.raises(errors.Duplicate):  # same phone, same session: refused per event
        await svc.book(request(sid, age=31, phone="03-1234-5678"), WEB)
    clock.at = NOW + timedelta(days=6)
    with pytest.raises(errors.WindowClosed):
        await svc.book(request(sid, age=30, phone="0311111111"), WEB)
    clock.at = NOW - timedelta(days=6)
    with pytest.raises(errors.WindowClosed):
        await svc.book(request(sid, age=30, phone="0311111111"), WEB)
    assert await _count(svc) == 1
    assert ok.booking.number and ok.booking.phone == "0312345678"


async def test_duplicates_are_flagged_when_the_event_says_so(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(duplicates="flag"), ADMIN)
    sid = await _session_id(svc)
    first = await svc.book(request(sid), WEB)
    second = await svc.book(request(sid), DESK)
    assert (first.booking.flagged, second.booking.flagged) == (False, True)


async def test_the_board_stops_bookings_of_a_cancelled_event(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(board_event="natsu-matsuri"), ADMIN)
    sid = await _session_id(svc)
    svc.board_entries["natsu-matsuri"] = "full"  # type: ignore[attr-defined]
    view = await svc.event("yoga", public=True)
    assert view.board_status == "full" and view.bookable  # shown, not stopping
    svc.board_entries["natsu-matsuri"] = "postponed"  # type: ignore[attr-defined]
    assert not (await svc.event("yoga", public=True)).bookable
    assert await svc.open_events("kouza") == []
    with pytest.raises(errors.EventStopped):
        await svc.book(request(sid), IVR)
    assert await _count(svc) == 0


async def test_a_lottery_is_drawn_once_after_the_window_with_its_seed_audited(
        service: tuple[BookingService, Clock]) -> None:
    svc, clock = service
    await svc.save_event(event("pottery", capacity=3, rule="lottery"), ADMIN)
    sid = await _session_id(svc, "pottery")
    entries = [await svc.book(request(sid, phone=f"0700000000{i}"), WEB) for i in range(8)]
    assert {e.booking.status for e in entries} == {"applied"}
    with pytest.raises(errors.DrawRefused):  # the window is still open
        await svc.draw("pottery", ADMIN, seed="fixed")
    clock.at = NOW + timedelta(days=6)
    result = await svc.draw("pottery", ADMIN, seed="fixed")
    assert result[sid] == {"seed": "fixed", "entries": 8, "confirmed": 3, "waiting": 5,
                           "lost": 0}
    with pytest.raises(errors.DrawRefused):
        await svc.draw("pottery", ADMIN)
    confirmed = {b.booking.number for b in entries if (await svc.lookup(
        b.booking.number, b.booking.phone)).booking.status == Status.CONFIRMED}
    assert len(confirmed) == 3
    async with svc.db.sessions() as s:
        sess = await s.get(BookingSession, sid)
        detail = await s.scalar(select(AuditEntry.detail).where(
            AuditEntry.action == "booking_draw"))
    assert sess is not None and sess.draw_seed == "fixed" and sess.taken == 3
    assert detail is not None and "seed=fixed" in detail and "confirmed=3" in detail
    # the first waiting entry (drawn order) takes a seat given back
    winner = next(e for e in entries if e.booking.number in confirmed)
    await svc.cancel(winner.booking.number, winner.booking.phone, WEB)
    statuses = [(await svc.lookup(e.booking.number, e.booking.phone)).booking.status
                for e in entries]
    assert statuses.count("confirmed") == 3 and statuses.count("waiting") == 4


async def test_the_desk_changes_the_party_within_the_seats(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(capacity=3), ADMIN)
    sid = await _session_id(svc)
    a = await svc.book(request(sid, phone="0300000001", party=2), WEB)
    w = await svc.book(request(sid, phone="0300000002", party=1), WEB)
    b = await svc.book(request(sid, phone="0300000003", party=1), WEB)
    assert (w.booking.status, b.booking.status) == ("confirmed", "waiting")
    with pytest.raises(errors.SessionFull):
        await svc.change(a.booking.number, 3, DESK)
    changed = await svc.change(a.booking.number, 1, DESK)
    assert changed.booking.party == 1
    assert (await svc.lookup(b.booking.number, "0300000003")).booking.status == "confirmed"
    found = await svc.search(DESK, phone="0300000002")
    assert [f.booking.number for f in found] == [w.booking.number]


async def test_the_purge_removes_bookings_past_retention(
        service: tuple[BookingService, Clock]) -> None:
    svc, clock = service
    await svc.save_event(event(), ADMIN)
    sid = await _session_id(svc)
    await svc.book(request(sid), WEB)
    assert (await svc.purge(90, ADMIN)).bookings == 0
    clock.at = NOW + timedelta(days=20 + 91)
    purged = await svc.purge(90, ADMIN)
    assert purged.bookings == 1 and len(purged.numbers) == 1
    assert await _count(svc) == 0


async def test_a_flow_node_lists_books_and_cancels_for_the_caller(
        service: tuple[BookingService, Clock]) -> None:
    svc, _ = service
    await svc.save_event(event(category="sports"), ADMIN)
    await svc.save_event(event("other", category="kouza"), ADMIN)
    views = await svc.open_events("sports")
    assert [v.row.id for v in views] == ["yoga"]
    sid = views[0].sessions[0].row.id
    found = await svc.book_for_caller(sid, "03-1234-5678",
                                      party=2, call_id="call-7")
    assert found.booking.channel == "ivr" and found.booking.call_id == "call-7"
    done = await svc.cancel_for_caller(found.booking.number, found.booking.phone, "call-7")
    assert done.booking.status == "cancelled"
