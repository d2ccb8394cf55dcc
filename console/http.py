"""Console pages: login and logout, the four role views, user administration. Pages are
server-rendered shells; their data comes from the JSON API with the same session."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import select

from core.access import (
    ADMIN_ONLY,
    ANYONE,
    PUBLIC,
    READERS,
    ROLES,
    STAFF,
    SUPERVISORS,
    Routes,
    policy_of,
    roles_for,
)
from core.clock import CITY_TZ
from core.identity import Actor
from core.interactions import OtherKind, OutcomeClass
from core.satisfaction import CITIZEN_TARGET, STAFF_TARGET
from store.models import AuditEntry

from . import schemas
from .audit_text import action_text, actor_text, detail_text
from .auth import (
    ADMIN,
    HOME,
    LOGIN_COOKIE,
    SESSION,
    Console,
    Session,
    UserError,
)
from .directory import MAX_CSV_BYTES, CsvError, Directory
from .errors import FormError
from .i18n import LANG_COOKIE, lang_of, texts
from .names import NameBook, Names
from .ports import PORTS, ConsolePorts

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory", Directory)
NAMES: web.AppKey[NameBook] = web.AppKey("console_names", NameBook)
HERE = Path(__file__).parent
PAGES = ("desk", "wallboard", "viewer", "bookings", "fax", "admin")
FAVICON = HERE / "static" / "favicon.svg"
STAFF_RATINGS = "/api/staff-satisfaction"  # the city staff's monthly ratings (another feature's)
# the FAX feature's API the FAX page calls (the page shows what the caller's role may do)
FAX_STATUS, FAX_SEND = "/api/fax/{id}/status", "/api/fax/send"


def _json(value: Any) -> str:
    """JSON for a <script type="application/json"> block: no "</script>" can end it early."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def _names(request: web.Request) -> Names:
    return request.app[NAMES].names(lang_of(request))


def _render(request: web.Request, template: str, status: int = 200,
            **context: Any) -> web.Response:
    lang = lang_of(request)
    t = texts(lang)
    s = request.get(SESSION)
    policy = policy_of(request.app)
    nav = [p for p in PAGES
           if s is not None and s.role in (roles_for(policy, "GET", f"/console/{p}") or ())]
    # names of services, operators... only for a logged-in user
    names = _names(request) if s is not None else None
    resp = aiohttp_jinja2.render_template(template, request, {
        "t": t, "lang": lang, "other_lang": "en" if lang == "ja" else "ja", "s": s,
        "nav": nav, "path": request.path, "t_json": _json(t),
        "names": names, "names_json": _json(names.as_json() if names else {}),
        **context}, status=status)
    if request.query.get("lang") == lang:
        resp.set_cookie(LANG_COOKIE, lang, samesite="Strict", path="/",
                        max_age=365 * 86400)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'")
    return resp


def _session(request: web.Request) -> Session:
    return request[SESSION]


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/")


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(HOME[_session(request).role])


async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request)


def _login_form(request: web.Request, error: str | None = None,
                status: int = 200) -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    resp = _render(request, "login.html", status, error=error, login_csrf=token,
                   next=schemas.safe_next(request.query.get("next")) or "")
    console = request.app[CONSOLE]
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/console/",
                    secure=console.config.secure_cookie)
    return resp


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = schemas.login(await request.post())
    kept = request.cookies.get(LOGIN_COOKIE, "")
    if not kept or not hmac.compare_digest(form.csrf.encode(), kept.encode()):
        return _login_form(request, "login_expired", 403)
    client = request.remote or "unknown"
    actor = Actor(form.audit_name, client)
    if not console.begin_login(form.name, client):  # counted now, before the check
        await console.audit(actor, "login-throttled")
        return _login_form(request, "login_locked", 429)
    user = await console.users.verify(form.name, form.password)
    if user is None:
        await console.audit(actor, "login-failed")
        return _login_form(request, "login_failed", 401)
    console.login_succeeded(form.name, client)
    s = console.sessions.create(user)
    await console.audit(Actor(user.name, client, user.name), "login", f"role={user.role}")
    resp = web.HTTPSeeOther(form.next or HOME[user.role])
    console.set_session_cookie(resp, s.id)
    resp.del_cookie(LOGIN_COOKIE, path="/console/")
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    s = _session(request)
    console.sessions.drop(s.id)
    await console.audit(Actor(s.user, request.remote or "unknown", s.user), "logout")
    resp = web.HTTPSeeOther("/console/login")
    resp.del_cookie("madoguchi_session", path="/")
    raise resp


_CALLER = re.compile(r"[0-9+]{1,24}")
_CALL = re.compile(r"[A-Za-z0-9._-]{1,32}")


async def bookings_page(request: web.Request) -> web.StreamResponse:
    """Course and event bookings (the page talks to /api/bookings): the desk books for the
    caller of ?caller= (pre-filled) and links the booking to ?call=."""
    caller = request.query.get("caller", "")
    call = request.query.get("call", "")
    return _render(request, "bookings.html",
                   caller=caller if _CALLER.fullmatch(caller) else "",
                   call=call if _CALL.fullmatch(call) else "")


async def desk(request: web.Request) -> web.StreamResponse:
    s = _session(request)
    # supervisors and admins may open any operator's desk; an operator only their own
    agent = schemas.desk_agent(s.agent_id if s.role != ADMIN and s.agent_id
                               else request.query.get("agent", s.agent_id or ""))
    names = _names(request)
    ports = request.app[PORTS]
    return _render(request, "desk.html", agent=agent, agent_name=names.agents.get(agent, ""),
                   operators=[(a, names.agent(a)) for a in names.agents],
                   classes=[(c.value, names.classes[c.value]) for c in OutcomeClass],
                   kinds=[(k.value, names.kinds[k.value]) for k in OtherKind],
                   topics=[names.topics.get(k, k) for k in ports.center.topics()],
                   transitions_json=_json(ports.operators.allowed_actions()))


async def wallboard(request: web.Request) -> web.StreamResponse:
    t = texts(lang_of(request))
    # today's citizens' score and this month's staff score, against their targets (points)
    return _render(request, "wallboard.html", satisfaction=[
        ("citizen_satisfaction", t["sat_citizen"], f"{CITIZEN_TARGET:g}"),
        ("staff_satisfaction", t["sat_staff_month"], f"{STAFF_TARGET:g}")])


async def fax_page(request: web.Request) -> web.StreamResponse:
    """The FAX inbox, its viewer and the sending form: a shell over the FAX API."""
    policy, role, names = policy_of(request.app), _session(request).role, _names(request)
    return _render(request, "fax.html",
                   can_handle=role in (roles_for(policy, "POST", FAX_STATUS) or ()),
                   can_send=role in (roles_for(policy, "POST", FAX_SEND) or ()),
                   classes=[(c.value, names.classes[c.value]) for c in OutcomeClass],
                   kinds=[(k.value, names.kinds[k.value]) for k in OtherKind])


async def viewer(request: web.Request) -> web.StreamResponse:
    names = _names(request)
    policy = policy_of(request.app)
    # the monthly rating form only for whom the API lets rate (the city's side)
    can_rate = _session(request).role in (
        roles_for(policy, "POST", STAFF_RATINGS) or ())
    month = datetime.now(CITY_TZ).strftime("%Y-%m")
    return _render(request, "viewer.html", services=list(names.services.items()),
                   agents=[(a, names.agent(a)) for a in names.agents],
                   can_rate=can_rate, this_month=month, staff_target=f"{STAFF_TARGET:g}")


async def admin(request: web.Request, error: str | None = None,
                status: int = 200, section: str = "user") -> web.StreamResponse:
    users = await request.app[CONSOLE].users.all()
    ports = request.app[PORTS]
    today = datetime.now(CITY_TZ).date()
    names = _names(request)
    return _render(request, "admin.html", status, users=users, roles=ROLES, error=error,
                   error_section=section,
                   services=[(svc, names.service(svc)) for svc in ports.center.services()],
                   modes=ports.center.override_modes(),
                   retention=ports.recordings.retention_days(),
                   retention_configured=ports.recordings.configured_retention_days(),
                   retention_min=ports.recordings.min_retention_days,
                   export_from=(today - timedelta(days=30)).isoformat(),
                   export_to=today.isoformat())


async def add_user(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    new = schemas.new_user(await request.post())
    try:
        await console.users.add(new.name, new.role, new.password, new.agent_id)
    except UserError as exc:
        return await admin(request, str(exc), 400)
    s = _session(request)
    await console.audit(Actor(s.user, request.remote or "unknown", s.user), "user-add",
                        f"{new.name} role={new.role}")
    raise web.HTTPSeeOther("/console/admin")


async def change_user(request: web.Request) -> web.StreamResponse:
    """Role change (with the extension), disable or enable; the user's sessions end at once
    on a role change or a disable, so no page keeps rights the user no longer has."""
    console = request.app[CONSOLE]
    s = _session(request)
    name = request.match_info["name"]
    form = await request.post()
    if name == s.user:
        return await admin(request, "you cannot change or disable your own account", 400)
    try:
        change = schemas.user_change(form)
        action = change.action
        if action == "role":
            before, after = await console.users.change(name, role=change.role,
                                                       agent_id=change.agent_id)
        else:
            before, after = await console.users.change(name, disabled=action == "disable")
    except (FormError, UserError) as exc:
        return await admin(request, str(exc), 400)
    ended = 0
    if after.disabled or (before.role, before.agent_id) != (after.role, after.agent_id):
        ended = console.sessions.end_user(name)
    if action == "role":
        detail = (f"{name} role {before.role}->{after.role}"
                  + (f" ext={after.agent_id}" if after.agent_id else ""))
    else:
        detail = name
    await console.audit(Actor(s.user, request.remote or "unknown", s.user), f"user-{action}",
                        f"{detail}; {ended} session(s) ended")
    raise web.HTTPSeeOther("/console/admin")


# ---- recordings: retention and the handover export --------------------------------------------
async def set_retention(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        days = schemas.retention_days(form)
        old = await request.app[PORTS].recordings.set_retention(days)  # says why not
    except FormError as exc:
        return await admin(request, exc.message, exc.status, "retention")
    except ValueError as exc:
        return await admin(request, str(exc), 400, "retention")
    s = _session(request)
    await request.app[CONSOLE].audit(Actor(s.user, request.remote or "unknown", s.user),
                                     "setting", f"retention_days {old} -> {days}")
    raise web.HTTPSeeOther("/console/admin")


async def export_download(request: web.Request) -> web.StreamResponse:
    """The same handover tar as `madoguchi export`, streamed to the admin as it is made
    (nothing staged on the disk the recordings live on)."""
    form = await request.post()
    try:
        span = schemas.export_range(form)
    except FormError as exc:
        return await admin(request, exc.message, exc.status, "export")
    s = _session(request)
    actor = Actor(s.user, request.remote or "unknown", s.user)
    first, last = span.first.isoformat(), span.last.isoformat()
    days = f"{first}..{last}"
    name = f"madoguchi-export-{first}-{last}.tar"
    resp = web.StreamResponse(headers={
        "Content-Type": "application/x-tar",
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})
    await resp.prepare(request)
    try:
        summary = await request.app[PORTS].recordings.export(span.start, span.end, resp.write)
    except BaseException as exc:
        # the receiver has a tar without its manifest: visibly incomplete
        await asyncio.shield(request.app[CONSOLE].audit(
            actor, "export", f"{days}: interrupted ({type(exc).__name__})"))
        raise
    await request.app[CONSOLE].audit(
        actor, "export",
        f"{days}: {summary.recordings} recordings, {summary.bytes} bytes, "
        f"manifest {summary.manifest_sha256[:16]}, {len(summary.problems)} problem(s)")
    await resp.write_eof()
    return resp


async def audit_described(request: web.Request) -> web.Response:
    """The latest audit rows as the admin page shows them: in the page's language, with names
    (the rows themselves, unchanged, are GET /api/audit)."""
    limit = schemas.audit_limit(request.query)
    names = _names(request)
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    async with request.app[CONSOLE].db.sessions() as session:
        rows = list((await session.scalars(stmt)).all())
    return web.json_response({"items": [
        {"id": a.id, "at": a.at.isoformat(), "actor": actor_text(a.actor, names.lang),
         "action": a.action, "action_text": action_text(a.action, names.lang),
         "detail_text": detail_text(a.action, a.detail or "", a.recording_id, names)}
        for a in rows]})


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(FAVICON, headers={"Content-Type": "image/svg+xml",
                                              "Cache-Control": "max-age=86400"})


async def directory_search(request: web.Request) -> web.Response:
    rows = await request.app[DIRECTORY].search_directory(schemas.search_text(request.query))
    return web.json_response({"items": [
        {"section": r.section, "name": r.name, "extension": r.extension, "note": r.note}
        for r in rows]})


async def faq_search(request: web.Request) -> web.Response:
    rows = await request.app[DIRECTORY].search_faq(schemas.search_text(request.query))
    return web.json_response({"items": [
        {"id": r.id, "question": r.question, "answer": r.answer} for r in rows]})


async def import_csv(request: web.Request) -> web.StreamResponse:
    """Admin upload of the staff directory or FAQ CSV (replaces the whole list)."""
    form = await request.post()
    try:
        upload = schemas.csv_upload(form)
        raw = schemas.csv_size(await asyncio.to_thread(  # the file may be on disk
            upload.field.file.read, MAX_CSV_BYTES + 1))
    except FormError as exc:
        return await admin(request, exc.message, exc.status)
    kind = upload.kind
    directory = request.app[DIRECTORY]
    try:
        done = await (directory.import_directory(raw) if kind == "directory"
                      else directory.import_faq(raw))
    except CsvError as exc:
        return await admin(request, f"{upload.field.filename}: {exc}", 400)
    s = _session(request)
    await request.app[CONSOLE].audit(Actor(s.user, request.remote or "unknown", s.user),
                                     "setting", f"import {kind}: {done.rows} rows")
    raise web.HTTPSeeOther("/console/admin")


def add_routes(app: web.Application, console: Console, ports: ConsolePorts) -> None:
    app[CONSOLE] = console
    app[PORTS] = ports
    app[DIRECTORY] = Directory(console.db)
    app[NAMES] = NameBook(ports)  # reads labels.yaml: a broken file stops the start here

    async def hash_pool(_app: web.Application) -> AsyncIterator[None]:
        await console.start()
        yield
        await console.close()

    app.cleanup_ctx.append(hash_pool)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                         autoescape=True)
    r = Routes(app)
    r.get("/", root, PUBLIC)
    r.get("/favicon.ico", favicon, PUBLIC)
    r.get("/console/", home, ANYONE)
    r.get("/console/login", login_page, PUBLIC)
    r.post("/console/login", login, PUBLIC)
    r.post("/console/logout", logout, ANYONE)
    r.get("/console/desk", desk, STAFF)
    r.get("/console/wallboard", wallboard, SUPERVISORS)
    r.get("/console/viewer", viewer, READERS)
    r.get("/console/fax", fax_page, ANYONE)
    r.get("/console/admin", admin, ADMIN_ONLY)
    r.get("/console/bookings", bookings_page, ANYONE)  # city viewers: lists and counts
    r.post("/console/admin/users", add_user, ADMIN_ONLY)
    r.post("/console/admin/users/{name}", change_user, ADMIN_ONLY)
    r.post("/console/admin/import", import_csv, ADMIN_ONLY)
    r.post("/console/admin/retention", set_retention, ADMIN_ONLY)
    r.post("/console/admin/export", export_download, ADMIN_ONLY)
    r.get("/api/directory", directory_search, STAFF)
    r.get("/api/faq", faq_search, STAFF)
    r.get("/api/console/audit", audit_described, ADMIN_ONLY)
    r.static("/console/static", HERE / "static")
