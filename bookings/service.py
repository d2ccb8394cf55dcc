"""Bookings: the catalogue, booking and cancelling on every channel (web, desk, ivr), the
lottery draw, the waiting list, staff lists. No aiohttp: the public page, the staff API and
an IVR flow node all call this class.

Never more confirmed seats than capacity, whatever the concurrency and the backend: every
allocation first locks its session's row (SELECT … FOR UPDATE on PostgreSQL; SQLite has one
writer at a time, store.db.Database.write), and the seat counter only moves through
`UPDATE … SET taken = taken + n WHERE … AND taken + n <= capacity`, whose row count says
whether the seats were there. Every change goes to the audit log with its channel and actor
in the same transaction as the change itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import now_utc
from store.db import Database
from store.models import AuditEntry

from . import numbers
from .allocation import (
    ACTIVE,
    Applicant,
    DuplicatePolicy,
    Eligibility,
    Entry,
    Rule,
    Status,
    Window,
    WindowState,
    draw,
    duplicate,
    ineligibility,
    new_seed,
    phone_digits,
    promotions,
)
from .errors import (
    AlreadyCancelled,
    BookingNotFound,
    CatalogueConflict,
    DrawRefused,
    Duplicate,
    EventNotFound,
    EventStopped,
    InvalidField,
    NotEligible,
    SessionFull,
    SessionNotFound,
    WindowClosed,
)
from .models import Booking, BookingEvent, BookingSession
from .schemas import BookingRequest, EventInput

Clock = Callable[[], datetime]
# the IVR board's status of an event (None: not on the board); passed in by the application
BoardStatus = Callable[[str], str | None]
# board statuses that stop new bookings; the others (full, time_changed…) are only shown
STOPPING = frozenset({"cancelled", "postponed"})
NUMBER_ATTEMPTS = 5


class Channel(StrEnum):
    WEB = "web"
    DESK = "desk"
    IVR = "ivr"
    SYSTEM = "system"  # the retention purge


@dataclass(frozen=True)
class Who:
    """Who makes a change, for the audit log: a staff user, the API token, the public page
    (name "public", the client's address) or the IVR (the caller's number hidden)."""

    name: str
    client: str
    channel: Channel


@dataclass(frozen=True)
class SessionView:
    row: BookingSession

    @property
    def free(self) -> int:
        return max(self.row.capacity - self.row.taken, 0)


@dataclass(frozen=True)
class EventView:
    row: BookingEvent
    sessions: tuple[SessionView, ...]
    window: WindowState
    board_status: str | None

    @property
    def stopped(self) -> bool:
        return self.board_status in STOPPING

    @property
    def bookable(self) -> bool:
        return self.row.published and self.window is WindowState.OPEN and not self.stopped


@dataclass
class Found:
    booking: Booking
    session: BookingSession
    event: BookingEvent


@dataclass
class Participants:
    session: BookingSession
    event: BookingEvent
    rows: list[Booking]


@dataclass
class Purge:
    at: datetime
    cutoff: datetime
    bookings: int = 0
    numbers: list[str] = field(default_factory=list)


def _window(ev: BookingEvent) -> Window:
    return Window(ev.opens_at, ev.closes_at)


def _audit(s: AsyncSession, at: datetime, who: Who, action: str, detail: str,
           call_id: str | None = None) -> None:
    s.add(AuditEntry(at=at, actor=who.name[:64], client=who.client[:64], action=action[:24],
                     call_id=call_id, detail=f"channel={who.channel.value} {detail}"))


class BookingService:
    def __init__(self, db: Database, clock: Clock = now_utc,
                 board: BoardStatus | None = None) -> None:
        self.db = db
        self.clock = clock
        self.board: BoardStatus = board or (lambda _event: None)

    # ---- catalogue ------------------------------------------------------------------------
    async def save_event(self, new: EventInput, who: Who) -> bool:
        """Create or update an event; its sessions are added, or updated when one with the
        same start and venue exists (capacity never below the seats taken). True if new."""
        async def work(s: AsyncSession) -> bool:
            return await self._save(s, new, who)
        return await self.db.write(work, "booking event")

    async def import_catalogue(self, events: Sequence[EventInput], who: Who) -> int:
        """A season's catalogue in one transaction: all events or, on any refusal, none."""
        async def work(s: AsyncSession) -> int:
            for new in events:
                await self._save(s, new, who)
            _audit(s, self.clock(), who, "catalogue_import", f"events={len(events)}")
            return len(events)
        return await self.db.write(work, "catalogue import")

    async def _save(self, s: AsyncSession, new: EventInput, who: Who) -> bool:
        now = self.clock()
        row = await s.get(BookingEvent, new.id)
        created = row is None
        if row is None:
            row = BookingEvent(id=new.id)
            s.add(row)
        e = new.eligibility
        row.category, row.title_ja, row.title_en = new.category, new.title_ja, new.title_en
        row.description_ja, row.description_en = new.description_ja, new.description_en
        row.fee_ja, row.fee_en = new.fee_ja, new.fee_en
        row.rule, row.duplicates = new.rule.value, new.duplicates.value
        row.waiting_list, row.residents_only = new.waiting_list, e.residents_only
        row.min_age, row.max_age, row.max_party = e.min_age, e.max_age, new.max_party
        row.opens_at, row.closes_at = new.window.opens, new.window.closes
        row.board_event, row.published, row.updated_at = new.board_event, new.published, now
        await s.flush()
        existing = (await s.scalars(select(BookingSession).where(
            BookingSession.event_id == new.id))).all()
        for sess in new.sessions:
            same = next((x for x in existing if x.starts_at == sess.starts_at
                         and x.venue_ja == sess.venue_ja), None)
            if same is None:
                s.add(BookingSession(event_id=new.id, starts_at=sess.starts_at,
                                     ends_at=sess.ends_at, venue_ja=sess.venue_ja,
                                     venue_en=sess.venue_en, capacity=sess.capacity, taken=0))
                continue
            if sess.capacity < same.taken:
                raise CatalogueConflict(f"{new.id}: capacity {sess.capacity} is below the "
                                        f"{same.taken} seats already confirmed")
            same.ends_at, same.venue_en, same.capacity = sess.ends_at, sess.venue_en, \
                sess.capacity
        _audit(s, now, who, "catalogue_save", f"event={new.id} created={created}")
        return created

    async def delete_event(self, event_id: str, who: Who) -> None:
        """Only an event nobody holds a booking for (cancel them first)."""
        async def work(s: AsyncSession) -> None:
            row = await s.get(BookingEvent, event_id)
            if row is None:
                raise EventNotFound()
            active = await s.scalar(select(func.count()).select_from(Booking).join(
                BookingSession, Booking.session_id == BookingSession.id).where(
                BookingSession.event_id == event_id, Booking.status.in_(list(ACTIVE))))
            if active:
                raise CatalogueConflict(f"{active} active booking(s): cancel them first")
            await s.execute(delete(Booking).where(Booking.session_id.in_(
                select(BookingSession.id).where(BookingSession.event_id == event_id))))
            await s.execute(delete(BookingSession).where(BookingSession.event_id == event_id))
            await s.delete(row)
            _audit(s, self.clock(), who, "catalogue_delete", f"event={event_id}")
        await self.db.write(work, "booking event delete")

    async def events(self, *, public: bool, category: str | None = None) -> list[EventView]:
        """The catalogue; for the public (and the IVR), published events with a session yet
        to start, soonest first."""
        now = self.clock()
        async with self.db.sessions() as s:
            stmt = select(BookingEvent).order_by(BookingEvent.opens_at, BookingEvent.id)
            if public:
                stmt = stmt.where(BookingEvent.published.is_(True))
            if category is not None:
                stmt = stmt.where(BookingEvent.category == category)
            rows = (await s.scalars(stmt)).all()
            sessions = (await s.scalars(select(BookingSession).order_by(
                BookingSession.starts_at, BookingSession.id))).all()
        by_event: dict[str, list[SessionView]] = {}
        for sess in sessions:
            if not public or sess.starts_at > now:
                by_event.setdefault(sess.event_id, []).append(SessionView(sess))
        views = [self._view(r, by_event.get(r.id, []), now) for r in rows]
        return [v for v in views if v.sessions] if public else views

    async def open_events(self, category: str | None = None) -> list[EventView]:
        """What may be booked now (for an IVR flow node): open, not stopped by the board."""
        return [v for v in await self.events(public=True, category=category) if v.bookable]

    async def event(self, event_id: str, public: bool = False) -> EventView:
        for view in await self.events(public=public):
            if view.row.id == event_id:
                return view
        raise EventNotFound()

    def _view(self, row: BookingEvent, sessions: list[SessionView], now: datetime
              ) -> EventView:
        board = self.board(row.board_event) if row.board_event else None
        return EventView(row, tuple(sessions), _window(row).state(now), board)

    # ---- booking --------------------------------------------------------------------------
    async def book(self, req: BookingRequest, who: Who, call_id: str | None = None
                   ) -> Found:
        """Book seats on a session for its window, rule and checks; the answer holds the
        booking number. Raises the reason of a refusal; nothing is stored then."""
        for attempt in range(NUMBER_ATTEMPTS):
            try:
                return await self.db.write(
                    lambda s: self._book(s, req, who, call_id), "booking")
            except IntegrityError:  # a booking number drawn twice: draw another
                if attempt == NUMBER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _locked(self, s: AsyncSession, session_id: int) -> BookingSession:
        # the row lock serialises allocations of one session on PostgreSQL
        sess = (await s.scalars(select(BookingSession).where(
            BookingSession.id == session_id).with_for_update())).one_or_none()
        if sess is None:
            raise SessionNotFound()
        return sess

    async def _book(self, s: AsyncSession, req: BookingRequest, who: Who,
                    call_id: str | None) -> Found:
        now = self.clock()
        phone = phone_digits(req.phone)  # a flow node may pass the caller id as it came
        if not phone:
            raise InvalidField("phone", "a phone number is required / 電話番号が必要です")
        sess = await self._locked(s, req.session_id)
        ev = await s.get(BookingEvent, sess.event_id)
        if ev is None or (not ev.published and who.channel is not Channel.DESK):
            raise SessionNotFound()
        board = self.board(ev.board_event) if ev.board_event else None
        if board in STOPPING:
            raise EventStopped(board or "")
        state = _window(ev).state(now)
        # the desk may still book a first-come session after the window, never before it
        desk_late = who.channel is Channel.DESK and state is WindowState.CLOSED \
            and ev.rule == Rule.FIRST_COME.value and sess.starts_at > now
        if state is not WindowState.OPEN and not desk_late:
            raise WindowClosed(not_yet=state is WindowState.NOT_YET)
        if sess.starts_at <= now:
            raise WindowClosed(not_yet=False)
        if req.party > ev.max_party:
            raise InvalidField("party", f"at most {ev.max_party} people per booking / "
                                        f"1件{ev.max_party}名まで")
        reason = ineligibility(Eligibility(ev.residents_only, ev.min_age, ev.max_age),
                               Applicant(req.resident, req.age))
        if reason is not None:
            raise NotEligible(reason)
        same = await s.scalar(select(func.count()).select_from(Booking).where(
            Booking.session_id == sess.id, Booking.phone == phone,
            Booking.status.in_(list(ACTIVE))))
        flagged = duplicate(DuplicatePolicy(ev.duplicates), int(same or 0))
        if flagged is None:
            raise Duplicate()
        if ev.rule == Rule.LOTTERY.value:
            status = Status.APPLIED
        elif await self._take(s, sess.id, req.party):
            status = Status.CONFIRMED
        elif ev.waiting_list:
            status = Status.WAITING
        else:
            raise SessionFull()
        booking = Booking(number=numbers.new_number(), session_id=sess.id,
                          status=status.value, party=req.party, name=req.name,
                          furigana=req.furigana, phone=phone, note=req.note,
                          resident=req.resident, age=req.age, channel=who.channel.value,
                          flagged=flagged, rank=0, call_id=call_id, created_at=now,
                          updated_at=now)
        s.add(booking)
        await s.flush()
        _audit(s, now, who, "booking_book",
               f"number={booking.number} session={sess.id} party={req.party} "
               f"status={status.value}{' flagged' if flagged else ''}", call_id)
        await s.refresh(sess)
        return Found(booking, sess, ev)

    async def book_for_caller(self, session_id: int, phone: str, party: int = 1, *,
                              resident: bool = True, age: int | None = None,
                              call_id: str | None = None) -> Found:
        """For an IVR flow node: a booking by the caller's number (channel ivr). The caller
        gives no name by keys; staff see the phone in the participant list."""
        req = BookingRequest(session_id=session_id, name="", furigana="", phone=phone,
                             party=party, note="", resident=resident, age=age)
        return await self.book(req, Who("ivr", call_id or "ivr", Channel.IVR), call_id)

    async def cancel_for_caller(self, number: str, phone: str,
                                call_id: str | None = None) -> Found:
        """For an IVR flow node: cancel by booking number, from the phone that booked."""
        return await self.cancel(number, phone, Who("ivr", call_id or "ivr", Channel.IVR))

    async def _take(self, s: AsyncSession, session_id: int, n: int) -> bool:
        result = await s.execute(
            update(BookingSession)
            .where(BookingSession.id == session_id,
                   BookingSession.taken + n <= BookingSession.capacity)
            .values(taken=BookingSession.taken + n)
            .execution_options(synchronize_session=False))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def _release(self, s: AsyncSession, session_id: int, n: int) -> None:
        await s.execute(update(BookingSession).where(BookingSession.id == session_id)
                        .values(taken=BookingSession.taken - n)
                        .execution_options(synchronize_session=False))

    async def _by_number(self, s: AsyncSession, number: str, phone: str | None) -> Booking:
        norm = numbers.normalise(number)
        if norm is None:
            raise BookingNotFound()
        booking = (await s.scalars(select(Booking).where(Booking.number == norm))
                   ).one_or_none()
        if booking is None or (phone is not None and booking.phone != phone_digits(phone)):
            raise BookingNotFound()
        return booking

    async def cancel(self, number: str, phone: str | None, who: Who) -> Found:
        """Cancel by booking number; the public page and the IVR also need the phone that
        booked (staff at the desk may leave it out). Seats given back go to the waiting
        list at once, in its order."""
        if phone is None and who.channel is not Channel.DESK:
            raise BookingNotFound()

        async def work(s: AsyncSession) -> Found:
            now = self.clock()
            found = await self._by_number(s, number, phone)
            sess = await self._locked(s, found.session_id)
            booking = await s.get(Booking, found.id, populate_existing=True)
            assert booking is not None
            if booking.status not in ACTIVE:
                raise AlreadyCancelled()
            was = booking.status
            booking.status, booking.updated_at = Status.CANCELLED.value, now
            _audit(s, now, who, "booking_cancel",
                   f"number={booking.number} session={sess.id} was={was}", booking.call_id)
            if was == Status.CONFIRMED.value:
                await self._release(s, sess.id, booking.party)
                await self._promote(s, sess.id, who, now)
            await s.flush()
            await s.refresh(sess)
            ev = await s.get(BookingEvent, sess.event_id)
            assert ev is not None
            return Found(booking, sess, ev)
        return await self.db.write(work, "booking cancel")

    async def _promote(self, s: AsyncSession, session_id: int, who: Who, now: datetime
                       ) -> None:
        sess = await s.get(BookingSession, session_id, populate_existing=True)
        assert sess is not None
        waiting = (await s.scalars(select(Booking).where(
            Booking.session_id == session_id, Booking.status == Status.WAITING.value)
            .order_by(Booking.rank, Booking.id))).all()
        chosen = set(promotions([Entry(b.id, b.party) for b in waiting],
                                sess.capacity - sess.taken))
        for b in waiting:
            if b.id in chosen and await self._take(s, session_id, b.party):
                b.status, b.updated_at = Status.CONFIRMED.value, now
                _audit(s, now, who, "booking_promote",
                       f"number={b.number} session={session_id} by=cancellation", b.call_id)

    async def change(self, number: str, party: int, who: Who, note: str | None = None
                     ) -> Found:
        """The desk changes a booking's number of people (or note): fewer seats free some
        for the waiting list; more must fit, else the booking is left as it was."""
        async def work(s: AsyncSession) -> Found:
            now = self.clock()
            found = await self._by_number(s, number, None)
            sess = await self._locked(s, found.session_id)
            booking = await s.get(Booking, found.id, populate_existing=True)
            ev = await s.get(BookingEvent, sess.event_id)
            assert booking is not None and ev is not None
            if booking.status not in ACTIVE:
                raise AlreadyCancelled()
            if not 1 <= party <= ev.max_party:
                raise InvalidField("party", f"party must be 1..{ev.max_party}")
            delta = party - booking.party
            if booking.status == Status.CONFIRMED.value and delta > 0 \
                    and not await self._take(s, sess.id, delta):
                raise SessionFull()
            old = booking.party
            booking.party, booking.updated_at = party, now
            if note is not None:
                booking.note = note
            _audit(s, now, who, "booking_change",
                   f"number={booking.number} session={sess.id} party={old}->{party}",
                   booking.call_id)
            if booking.status == Status.CONFIRMED.value and delta < 0:
                await self._release(s, sess.id, -delta)
                await self._promote(s, sess.id, who, now)
            await s.flush()
            await s.refresh(sess)
            return Found(booking, sess, ev)
        return await self.db.write(work, "booking change")

    async def lookup(self, number: str, phone: str) -> Found:
        """One booking for its holder (number and phone both right), as the public page shows
        it; nothing else is ever shown there."""
        async with self.db.sessions() as s:
            booking = await self._by_number(s, number, phone)
            return await self._found(s, booking)

    async def _found(self, s: AsyncSession, booking: Booking) -> Found:
        sess = await s.get(BookingSession, booking.session_id)
        assert sess is not None
        ev = await s.get(BookingEvent, sess.event_id)
        assert ev is not None
        return Found(booking, sess, ev)

    async def search(self, who: Who, number: str | None = None, phone: str | None = None
                     ) -> list[Found]:
        """Staff (the desk) find a caller's bookings by number or phone; audited."""
        async def work(s: AsyncSession) -> list[Found]:
            stmt = select(Booking).order_by(Booking.id.desc()).limit(50)
            if number is not None:
                norm = numbers.normalise(number)
                if norm is None:
                    return []
                stmt = stmt.where(Booking.number == norm)
            elif phone is not None:
                stmt = stmt.where(Booking.phone == phone_digits(phone))
            else:
                raise InvalidField("q", "give a booking number or a phone number")
            found = [await self._found(s, b) for b in (await s.scalars(stmt)).all()]
            _audit(s, self.clock(), who, "booking_search",
                   f"by={'number' if number else 'phone'} results={len(found)}")
            return found
        return await self.db.write(work, "booking search")

    # ---- lottery --------------------------------------------------------------------------
    async def draw(self, event_id: str, who: Who, seed: str | None = None
                   ) -> dict[int, Any]:
        """Draw a lottery event's sessions once its window has closed. The seed (given, or
        from secrets) is stored on each session and in the audit log, so the same entries
        and seed give the same draw for anyone who checks (allocation.draw)."""
        seed = seed or new_seed()
        if len(seed) > 64 or not seed.isascii() or not seed.isprintable():
            raise InvalidField("seed", "seed must be 1-64 printable ASCII characters")

        async def work(s: AsyncSession) -> dict[int, Any]:
            now = self.clock()
            ev = await s.get(BookingEvent, event_id)
            if ev is None:
                raise EventNotFound()
            if ev.rule != Rule.LOTTERY.value:
                raise DrawRefused("this event is first come, first served; nothing to draw")
            if _window(ev).state(now) is not WindowState.CLOSED:
                raise DrawRefused("the lottery is drawn after the application window closes")
            ids = (await s.scalars(select(BookingSession.id).where(
                BookingSession.event_id == event_id).order_by(BookingSession.id))).all()
            out: dict[int, Any] = {}
            for sid in ids:
                sess = await self._locked(s, sid)
                if sess.drawn_at is not None:
                    continue
                entries = (await s.scalars(select(Booking).where(
                    Booking.session_id == sid, Booking.status == Status.APPLIED.value))).all()
                result = draw([Entry(b.id, b.party) for b in entries],
                              sess.capacity - sess.taken, seed, ev.waiting_list)
                by_id = {b.id: b for b in entries}
                for bid in result.confirmed:
                    if not await self._take(s, sid, by_id[bid].party):
                        raise AssertionError("a drawn party did not fit")  # draw() checked
                    by_id[bid].status = Status.CONFIRMED.value
                for rank, bid in enumerate(result.waiting, start=1):
                    by_id[bid].status, by_id[bid].rank = Status.WAITING.value, rank
                for bid in result.lost:
                    by_id[bid].status = Status.LOST.value
                for b in entries:
                    b.updated_at = now
                sess.draw_seed, sess.drawn_at = seed, now
                _audit(s, now, who, "booking_draw",
                       f"event={event_id} session={sid} seed={seed} entries={len(entries)} "
                       f"confirmed={len(result.confirmed)} waiting={len(result.waiting)} "
                       f"lost={len(result.lost)}")
                out[sid] = {"seed": seed, "entries": len(entries),
                            "confirmed": len(result.confirmed),
                            "waiting": len(result.waiting), "lost": len(result.lost)}
            if not out:
                raise DrawRefused("every session of this event has been drawn already")
            return out
        return await self.db.write(work, "lottery draw")

    # ---- lists for the city -----------------------------------------------------------------
    async def participants(self, session_id: int, who: Who) -> Participants:
        """A session's bookings (every status) for the participant list; audited."""
        async def work(s: AsyncSession) -> Participants:
            sess = await s.get(BookingSession, session_id)
            if sess is None:
                raise SessionNotFound()
            ev = await s.get(BookingEvent, sess.event_id)
            assert ev is not None
            rows = list((await s.scalars(select(Booking).where(
                Booking.session_id == session_id).order_by(Booking.status, Booking.rank,
                                                            Booking.id))).all())
            _audit(s, self.clock(), who, "booking_list",
                   f"session={session_id} rows={len(rows)}")
            return Participants(sess, ev, rows)
        return await self.db.write(work, "participant list")

    async def counts(self, start: datetime | None = None, end: datetime | None = None
                     ) -> dict[str, dict[str, int]]:
        """Bookings by channel and status (made in [start, end) when given): no personal
        data, for the monthly report and the city viewer."""
        stmt = select(Booking.channel, Booking.status, func.count(), func.sum(Booking.party)
                      ).group_by(Booking.channel, Booking.status)
        if start is not None:
            stmt = stmt.where(Booking.created_at >= start)
        if end is not None:
            stmt = stmt.where(Booking.created_at < end)
        out: dict[str, dict[str, int]] = {}
        async with self.db.sessions() as s:
            for channel, status, n, people in (await s.execute(stmt)).all():
                row = out.setdefault(channel, {})
                row[status] = int(n)
                row[f"{status}_people"] = int(people or 0)
        return out

    # ---- personal data ----------------------------------------------------------------------
    async def purge(self, retention_days: int, who: Who) -> Purge:
        """Delete bookings of sessions that ended more than retention_days ago; the counts
        in the audit log, the numbers in the deletion report (written by the caller)."""
        now = self.clock()
        result = Purge(now, now - timedelta(days=retention_days))

        async def work(s: AsyncSession) -> None:
            old = select(BookingSession.id).where(BookingSession.ends_at < result.cutoff)
            rows = (await s.scalars(select(Booking.number).where(
                Booking.session_id.in_(old)))).all()
            result.numbers, result.bookings = sorted(rows), len(rows)
            if rows:
                await s.execute(delete(Booking).where(Booking.session_id.in_(old)))
                _audit(s, now, who, "booking_purge",
                       f"cutoff={result.cutoff.isoformat()} bookings={len(rows)}")
        await self.db.write(work, "booking purge")
        return result
