"""Console pages: login and logout, the four role views, user administration. Pages are
server-rendered shells; their data comes from the JSON API with the same session."""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ivr.handlers import IVR
from ivr.schedule import OverrideMode
from kpi.formulas import OtherKind, OutcomeClass
from madoguchi.errors import json_error
from recordings.service import Actor

from .auth import (
    ADMIN,
    HOME,
    LOGIN_COOKIE,
    POLICY,
    ROLES,
    SESSION,
    Console,
    Session,
    UserError,
)
from .directory import CsvError, Directory
from .i18n import LANG_COOKIE, lang_of, texts

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory", Directory)
HERE = Path(__file__).parent
PAGES = ("desk", "wallboard", "viewer", "admin")


def _render(request: web.Request, template: str, status: int = 200,
            **context: Any) -> web.Response:
    lang = lang_of(request)
    t = texts(lang)
    s = request.get(SESSION)
    nav = [p for p in PAGES if s is not None and s.role in POLICY[("GET", f"/console/{p}")]]
    resp = aiohttp_jinja2.render_template(template, request, {
        "t": t, "lang": lang, "other_lang": "en" if lang == "ja" else "ja", "s": s,
        "nav": nav, "path": request.path, "t_json": json.dumps(t, ensure_ascii=False),
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


def _safe_next(raw: str | None) -> str | None:
    # only our own pages: never an open redirect
    if raw and raw.startswith("/console/") and "//" not in raw and "\\" not in raw:
        return raw
    return None


async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request)


def _login_form(request: web.Request, error: str | None = None,
                status: int = 200) -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    resp = _render(request, "login.html", status, error=error, login_csrf=token,
                   next=_safe_next(request.query.get("next")) or "")
    console = request.app[CONSOLE]
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/console/",
                    secure=console.config.secure_cookie)
    return resp


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    given, kept = str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
    if not kept or not hmac.compare_digest(given.encode(), kept.encode()):
        return _login_form(request, "login_expired", 403)
    client = request.remote or "unknown"
    actor = Actor(name[:64] or "?", client)
    if console.user_throttle.blocked(f"user:{name}") or console.client_throttle.blocked(
            f"client:{client}"):
        await console.audit(actor, "login-throttled")
        return _login_form(request, "login_locked", 429)
    user = await console.users.verify(name, password)
    if user is None:
        console.user_throttle.failed(f"user:{name}")
        console.client_throttle.failed(f"client:{client}")
        await console.audit(actor, "login-failed")
        return _login_form(request, "login_failed", 401)
    console.user_throttle.clear(f"user:{name}")
    s = console.sessions.create(user)
    await console.audit(Actor(user.name, client, user.name), "login", f"role={user.role}")
    resp = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))) or HOME[user.role])
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


async def desk(request: web.Request) -> web.StreamResponse:
    s = _session(request)
    # supervisors and admins may open any operator's desk; an operator only their own
    agent = s.agent_id if s.role != ADMIN and s.agent_id else request.query.get("agent",
                                                                              s.agent_id or "")
    if not agent.isdigit():
        agent = ""
    return _render(request, "desk.html", agent=agent,
                   classes=[c.value for c in OutcomeClass], kinds=[k.value for k in OtherKind])


async def wallboard(request: web.Request) -> web.StreamResponse:
    return _render(request, "wallboard.html")


async def viewer(request: web.Request) -> web.StreamResponse:
    return _render(request, "viewer.html")


async def admin(request: web.Request, error: str | None = None,
                status: int = 200) -> web.StreamResponse:
    users = await request.app[CONSOLE].users.all()
    services = sorted(request.app[IVR].current.entry)
    return _render(request, "admin.html", status, users=users, roles=ROLES, error=error,
                   services=services, modes=[m.value for m in OverrideMode])


async def add_user(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    name, role = str(form.get("name", "")), str(form.get("role", ""))
    agent = str(form.get("agent_id", "")) or None
    try:
        await console.users.add(name, role, str(form.get("password", "")), agent)
    except UserError as exc:
        return await admin(request, str(exc), 400)
    s = _session(request)
    await console.audit(Actor(s.user, request.remote or "unknown", s.user), "user-add",
                        f"{name} role={role}")
    raise web.HTTPSeeOther("/console/admin")


def _query(request: web.Request) -> str:
    q = request.query.get("q", "").strip()
    if not q or len(q) > 64:
        raise json_error(400, "bad_parameter", "q must be 1-64 characters")
    return q


async def directory_search(request: web.Request) -> web.Response:
    rows = await request.app[DIRECTORY].search_directory(_query(request))
    return web.json_response({"items": [
        {"section": r.section, "name": r.name, "extension": r.extension, "note": r.note}
        for r in rows]})


async def faq_search(request: web.Request) -> web.Response:
    rows = await request.app[DIRECTORY].search_faq(_query(request))
    return web.json_response({"items": [
        {"id": r.id, "question": r.question, "answer": r.answer} for r in rows]})


async def import_csv(request: web.Request) -> web.StreamResponse:
    """Admin upload of the staff directory or FAQ CSV (replaces the whole list)."""
    form = await request.post()
    kind, upload = form.get("kind"), form.get("file")
    if kind not in ("directory", "faq") or not isinstance(upload, web.FileField):
        return await admin(request, "choose directory or faq and a CSV file", 400)
    raw = upload.file.read(8 * 1024 * 1024 + 1)
    if len(raw) > 8 * 1024 * 1024:
        return await admin(request, "the CSV is over 8 MiB", 400)
    directory = request.app[DIRECTORY]
    try:
        text = raw.decode("utf-8")
        done = await (directory.import_directory(text) if kind == "directory"
                      else directory.import_faq(text))
    except (CsvError, UnicodeDecodeError) as exc:
        return await admin(request, f"{upload.filename}: {exc}", 400)
    s = _session(request)
    await request.app[CONSOLE].audit(Actor(s.user, request.remote or "unknown", s.user),
                                     "setting", f"import {kind}: {done.rows} rows")
    raise web.HTTPSeeOther("/console/admin")


def add_routes(app: web.Application, console: Console) -> None:
    app[CONSOLE] = console
    app[DIRECTORY] = Directory(console.db)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                         autoescape=True)
    r = app.router
    r.add_get("/", root)
    r.add_get("/console/", home)
    r.add_get("/console/login", login_page)
    r.add_post("/console/login", login)
    r.add_post("/console/logout", logout)
    r.add_get("/console/desk", desk)
    r.add_get("/console/wallboard", wallboard)
    r.add_get("/console/viewer", viewer)
    r.add_get("/console/admin", admin)
    r.add_post("/console/admin/users", add_user)
    r.add_post("/console/admin/import", import_csv)
    r.add_get("/api/directory", directory_search)
    r.add_get("/api/faq", faq_search)
    r.add_static("/console/static", HERE / "static", append_version=True)
