"""HTTP of bookings: the public pages under /book/ (no login, 24/7) and the staff API under
/api/bookings (catalogue for admins and supervisors, the desk for operators, lists for the
city). Thin: parsing, protections and rendering around BookingService."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from core.access import ANYONE, PUBLIC, READERS, STAFF, SUPERVISORS, Routes
from core.errors import ApiError, json_object
from core.identity import actor_of

from . import catalogue, numbers, pages, participants_pdf, schemas
from .errors import (
    BookingError,
    BookingNotFound,
    EventNotFound,
    InvalidField,
    RateLimited,
    SessionNotFound,
)
from .guard import COOKIE, Csrf, RateLimit
from .participants_pdf import Font
from .service import BookingService, Channel, EventView, Found, Who
from .settings import BookingSettings

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    # no inline script or style anywhere: a script that slipped into a value would not run
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "object-src 'none'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Bookings:
    service: BookingService
    settings: BookingSettings = field(default_factory=BookingSettings)
    csrf: Csrf = field(default_factory=Csrf)
    font: Font | None = None  # a Japanese font for the PDF list (the application's)

    def __post_init__(self) -> None:
        self.writes = RateLimit(self.settings.public_writes_per_minute)
        self.reads = RateLimit(self.settings.public_reads_per_minute)


BOOKINGS: web.AppKey[Bookings] = web.AppKey("bookings", Bookings)


# ---- public pages ---------------------------------------------------------------------------
def _client(request: web.Request) -> str:
    return request.remote or "unknown"


def _html(request: web.Request, body: str, status: int = 200,
          cookie: str | None = None) -> web.Response:
    resp = web.Response(text=body, status=status, content_type="text/html",
                        headers=SECURITY_HEADERS)
    if cookie is not None:
        resp.set_cookie(COOKIE, cookie, path="/book", httponly=True, samesite="Strict",
                        secure=request.secure)
    return resp


def _cookie(request: web.Request) -> tuple[str, str | None]:
    """The page's CSRF cookie, and a new one to set when the browser has none."""
    have = request.cookies.get(COOKIE)
    if have and len(have) <= 64:
        return have, None
    new = Csrf.new_cookie()
    return new, new


def _refusal(request: web.Request, exc: ApiError, back: str) -> web.Response:
    resp = _html(request, pages.error_page(exc.status, exc.message, back), exc.status)
    if isinstance(exc, RateLimited):
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


async def _form(request: web.Request) -> dict[str, Any]:
    """A posted form as {field: text}; anything else (JSON, files, bad encoding) is a 400."""
    if request.content_type not in ("application/x-www-form-urlencoded",
                                    "multipart/form-data"):
        raise InvalidField("form", "send the page's form (application/x-www-form-urlencoded)")
    try:
        data = await request.post()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidField("form", "the form could not be read") from exc
    out: dict[str, Any] = {}
    for key in data:
        value = data.getone(key)
        if not isinstance(value, str) or "\x00" in value:
            raise InvalidField(key[:32], f"{key[:32]} must be text")
        out[key] = value
    return out


async def to_list(_request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/book/")


async def list_page(request: web.Request) -> web.Response:
    b = request.app[BOOKINGS]
    try:
        b.reads.take(_client(request))
    except RateLimited as exc:
        return _refusal(request, exc, "/book/")
    _, new = _cookie(request)
    return _html(request, pages.event_list(await b.service.events(public=True)), cookie=new)


async def _public_event(b: Bookings, event_id: str) -> EventView:
    if len(event_id) > 48:
        raise EventNotFound()
    return await b.service.event(event_id, public=True)


async def event_page(request: web.Request) -> web.Response:
    b = request.app[BOOKINGS]
    try:
        b.reads.take(_client(request))
        view = await _public_event(b, request.match_info["id"])
    except ApiError as exc:
        return _refusal(request, exc, "/book/")
    cookie, new = _cookie(request)
    return _html(request, pages.event_page(view, b.csrf.token(cookie)), cookie=new)


async def book(request: web.Request) -> web.Response:
    b = request.app[BOOKINGS]
    back = f"/book/events/{request.match_info['id'][:48]}"
    try:
        b.writes.take(_client(request))
        form = await _form(request)
        b.csrf.check(request.cookies.get(COOKIE), form.get("csrf"))
        view = await _public_event(b, request.match_info["id"])
        req = schemas.booking_request(form)
        if req.session_id not in {s.row.id for s in view.sessions}:
            raise SessionNotFound()
        found = await b.service.book(req, Who("public", _client(request), Channel.WEB))
    except ApiError as exc:
        return _refusal(request, exc, back)
    return _html(request, pages.booked(found), 201)


async def cancel_page(request: web.Request) -> web.Response:
    b = request.app[BOOKINGS]
    try:
        b.reads.take(_client(request))
    except RateLimited as exc:
        return _refusal(request, exc, "/book/")
    cookie, new = _cookie(request)
    return _html(request, pages.cancel_form(b.csrf.token(cookie)), cookie=new)


async def cancel(request: web.Request) -> web.Response:
    b = request.app[BOOKINGS]
    try:
        b.writes.take(_client(request))
        form = await _form(request)
        b.csrf.check(request.cookies.get(COOKIE), form.get("csrf"))
        number = schemas.text(form, "number", 32)
        try:
            phone = schemas.phone(form)
        except InvalidField:
            raise BookingNotFound() from None  # one answer whatever was wrong
        found = await b.service.cancel(number, phone, Who("public", _client(request),
                                                          Channel.WEB))
    except ApiError as exc:
        return _refusal(request, exc, "/book/cancel")
    return _html(request, pages.cancelled(found))


# ---- staff API ------------------------------------------------------------------------------
def _who(request: web.Request) -> Who:
    actor = actor_of(request)
    return Who(actor.name, actor.client, Channel.DESK)


def session_json(view: Any) -> dict[str, Any]:
    s = view.row
    return {"id": s.id, "starts_at": s.starts_at.isoformat(), "ends_at": s.ends_at.isoformat(),
            "venue_ja": s.venue_ja, "venue_en": s.venue_en, "capacity": s.capacity,
            "taken": s.taken, "free": view.free, "draw_seed": s.draw_seed,
            "drawn_at": s.drawn_at.isoformat() if s.drawn_at else None}


def event_json(view: EventView) -> dict[str, Any]:
    r = view.row
    return {"id": r.id, "category": r.category, "title_ja": r.title_ja, "title_en": r.title_en,
            "description_ja": r.description_ja, "description_en": r.description_en,
            "fee_ja": r.fee_ja, "fee_en": r.fee_en, "rule": r.rule,
            "duplicates": r.duplicates, "waiting_list": r.waiting_list,
            "residents_only": r.residents_only, "min_age": r.min_age, "max_age": r.max_age,
            "max_party": r.max_party, "opens_at": r.opens_at.isoformat(),
            "closes_at": r.closes_at.isoformat(), "board_event": r.board_event,
            "board_status": view.board_status, "published": r.published,
            "window": view.window.value, "bookable": view.bookable,
            "sessions": [session_json(s) for s in view.sessions]}


def booking_json(found: Found) -> dict[str, Any]:
    b = found.booking
    return {"number": b.number, "display": numbers.display(b.number),
            "status": b.status, "party": b.party, "name": b.name, "furigana": b.furigana,
            "phone": b.phone, "note": b.note, "channel": b.channel, "flagged": b.flagged,
            "call_id": b.call_id, "created_at": b.created_at.isoformat(),
            "event": found.event.id, "title_ja": found.event.title_ja,
            "session_id": found.session.id, "starts_at": found.session.starts_at.isoformat()}


async def list_events(request: web.Request) -> web.Response:
    category = request.query.get("category") or None
    if category is not None and len(category) > 32:
        raise InvalidField("category", "category is at most 32 characters")
    views = await request.app[BOOKINGS].service.events(public=False, category=category)
    return web.json_response({"events": [event_json(v) for v in views]})


async def save_event(request: web.Request) -> web.Response:
    new = schemas.event_input(await json_object(request))
    service = request.app[BOOKINGS].service
    created = await service.save_event(new, _who(request))
    return web.json_response(event_json(await service.event(new.id)),
                             status=201 if created else 200)


async def delete_event(request: web.Request) -> web.Response:
    await request.app[BOOKINGS].service.delete_event(request.match_info["id"][:48],
                                                     _who(request))
    return web.json_response({"deleted": request.match_info["id"][:48]})


async def import_catalogue(request: web.Request) -> web.Response:
    raw = await request.read()
    events = catalogue.parse(raw)
    n = await request.app[BOOKINGS].service.import_catalogue(events, _who(request))
    return web.json_response({"imported": n})


async def draw(request: web.Request) -> web.Response:
    body = await json_object(request) if request.body_exists else {}
    seed = body.get("seed")
    if seed is not None and not isinstance(seed, str):
        raise InvalidField("seed", "seed must be text")
    result = await request.app[BOOKINGS].service.draw(request.match_info["id"][:48],
                                                      _who(request), seed or None)
    return web.json_response({"sessions": {str(k): v for k, v in result.items()}})


def _session_id(request: web.Request) -> int:
    return schemas.integer({"session": request.match_info["session"]}, "session", 1,
                           2**31 - 1)


async def participants_csv(request: web.Request) -> web.Response:
    listing = await request.app[BOOKINGS].service.participants(_session_id(request),
                                                                _who(request))
    out = io.StringIO()
    catalogue.participants_csv(listing, out)
    name = f"participants-{listing.event.id}-{listing.session.id}.csv"
    return web.Response(body=out.getvalue().encode("utf-8-sig"), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def participants_pdf_file(request: web.Request) -> web.Response:
    b = request.app[BOOKINGS]
    if b.font is None:
        raise BookingError("no Japanese font is configured for PDF lists; use the CSV",
                           status=503, error_id="pdf_unavailable")
    listing = await b.service.participants(_session_id(request), _who(request))
    font = b.font
    try:
        body = await asyncio.to_thread(participants_pdf.render, listing, font)
    except Exception as exc:  # the font missing (ReportFontMissing): say so, not a 500
        raise BookingError(f"the PDF could not be drawn: {exc}", status=503,
                           error_id="pdf_unavailable") from exc
    name = f"participants-{listing.event.id}-{listing.session.id}.pdf"
    return web.Response(body=body, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def counts(request: web.Request) -> web.Response:
    return web.json_response({"by_channel": await request.app[BOOKINGS].service.counts()})


async def search(request: web.Request) -> web.Response:
    number = request.query.get("number") or None
    phone = request.query.get("phone") or None
    if phone is not None:
        phone = schemas.phone({"phone": phone})
    found = await request.app[BOOKINGS].service.search(_who(request), number, phone)
    return web.json_response({"bookings": [booking_json(f) for f in found]})


async def desk_book(request: web.Request) -> web.Response:
    body = await json_object(request)
    req = schemas.booking_request(body)
    call_id = body.get("call_id")
    if call_id is not None and (not isinstance(call_id, str) or len(call_id) > 32):
        raise InvalidField("call_id", "call_id must be a call's id")
    found = await request.app[BOOKINGS].service.book(req, _who(request), call_id)
    return web.json_response(booking_json(found), status=201)


async def desk_cancel(request: web.Request) -> web.Response:
    found = await request.app[BOOKINGS].service.cancel(request.match_info["number"][:32],
                                                       None, _who(request))
    return web.json_response(booking_json(found))


async def desk_change(request: web.Request) -> web.Response:
    body = await json_object(request)
    party = schemas.integer(body, "party", 1, schemas.MAX_PARTY)
    note = schemas.text(body, "note", schemas.MAX_NOTE, False, True) if "note" in body \
        else None
    found = await request.app[BOOKINGS].service.change(request.match_info["number"][:32],
                                                       party, _who(request), note)
    return web.json_response(booking_json(found))


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    # the public side: citizens, no login (protected by CSRF cookie and rate limits)
    r.get("/book", to_list, PUBLIC)
    r.get("/book/", list_page, PUBLIC)
    r.get("/book/events/{id}", event_page, PUBLIC)
    r.post("/book/events/{id}", book, PUBLIC)
    r.get("/book/cancel", cancel_page, PUBLIC)
    r.post("/book/cancel", cancel, PUBLIC)
    r.static("/book/static", STATIC)
    # the catalogue: admins and supervisors
    # the catalogue holds no personal data: every staff role and the city viewer read it
    r.get("/api/bookings/events", list_events, ANYONE)
    r.post("/api/bookings/events", save_event, SUPERVISORS)
    r.post("/api/bookings/events/{id}/delete", delete_event, SUPERVISORS)
    r.post("/api/bookings/events/{id}/draw", draw, SUPERVISORS)
    r.post("/api/bookings/import", import_catalogue, SUPERVISORS)
    # lists for the city
    r.get("/api/bookings/sessions/{session}/participants.csv", participants_csv, READERS)
    r.get("/api/bookings/sessions/{session}/participants.pdf", participants_pdf_file,
          READERS)
    r.get("/api/bookings/counts", counts, READERS)
    # the desk: operators book, cancel and change for a caller
    r.get("/api/bookings/search", search, STAFF)
    r.post("/api/bookings", desk_book, STAFF)
    r.post("/api/bookings/{number}/cancel", desk_cancel, STAFF)
    r.post("/api/bookings/{number}/change", desk_change, STAFF)


__all__ = ["BOOKINGS", "Bookings", "add_routes"]
