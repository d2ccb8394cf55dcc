"""Console users and access: every route × every role (the role matrix), login with CSRF and
throttling, cookie flags, idle timeout, CSRF on state changes, the API token as the machine
identity, audit rows, the `users` CLI and the Japanese-first pages."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.auth import (
    COOKIE,
    Console,
    ConsoleConfig,
    Sessions,
    Throttle,
)
from console.http import CONSOLE
from console.models import ConsoleUser
from core.access import ADMIN_ONLY, ROLES, policy_of
from harness.offline_engine import offline_config, offline_engine
from madoguchi.cli import main
from madoguchi.engine import Engine
from madoguchi.web import make_app
from tests.console_users import PASSWORD, login, user_with_role


def _concrete(route: str) -> str:
    return (route.replace("{id}", "7001").replace("{service}", "city")
            .replace("{event}", "no-such-event").replace("{name}", "nobody")
            .replace("{lang}/{key}", "ja/" + "0" * 24)
            .replace("/console/static", "/console/static/console.css"))


def _routes(client: TestClient) -> list[tuple[str, str]]:
    found = set()
    for r in client.app.router.routes():
        if r.method == "HEAD":
            continue
        found.add((r.method, r.resource.canonical if r.resource else ""))
    return sorted(found)


def _refused(status: int, body: bytes) -> bool:
    """Refused by the access check (a handler's own 403, e.g. a refused transfer, differs)."""
    return status == 403 and (body.startswith(b'{"error": "forbidden"')
                              or body.startswith(b"403: your role"))


async def test_role_matrix_every_route_for_every_role(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, _, console = app_client
    routes = _routes(client)
    # the matrix covers every route the app serves, the console's and the APIs'
    assert ("GET", "/api/recordings") in routes and ("POST", "/console/admin/users") in routes
    assert {("POST", "/console/admin/users/{name}"), ("POST", "/api/closures"),
            ("POST", "/api/closures/delete"), ("POST", "/console/admin/retention"),
            ("POST", "/console/admin/export"), ("POST", "/api/tts/preview"),
            ("GET", "/api/tts/{lang}/{key}")} <= set(routes)
    assert len(routes) >= 30
    # the matrix is about roles; operators' ownership of a call has its own test below
    console.call_owner = lambda _call_id: "7001"
    policy = policy_of(client.server.app)
    # every route declared its roles where its feature registered it
    assert {r for r in routes if r[0] != "HEAD"} <= set(policy), set(routes) - set(policy)
    for method, route in routes:
        path = _concrete(route)
        public = policy.get((method, route), ADMIN_ONLY) is None
        # without a login: APIs answer 401, pages send to the login form
        resp = await client.request(method, path, allow_redirects=False, json={})
        if public:
            assert resp.status != 401 and not _refused(resp.status, await resp.read())
        elif route.startswith("/console"):
            assert resp.status == 303 and resp.headers["Location"].startswith(
                "/console/login"), (method, route)
        else:
            assert resp.status == 401, (method, route)
        for role in ROLES:
            s = console.sessions.create(user_with_role(console, role))
            headers = {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}
            resp = await client.request(method, path, headers=headers, json={},
                                        allow_redirects=False)
            denied = _refused(resp.status, await resp.read())
            allowed = public or role in (policy.get((method, route), ADMIN_ONLY) or ())
            assert denied != allowed, (method, route, role, resp.status)
            assert resp.status != 401, (method, route, role)
        # the API token is the machine identity: never refused by the access check
        resp = await client.request(method, path, json={}, allow_redirects=False, headers={
            "Authorization": f"Bearer {console.api_token}"})
        assert resp.status != 401, (method, route)
        assert not _refused(resp.status, await resp.read()), (method, route)


async def test_operators_act_only_on_their_own_extension_and_call(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, _, console = app_client
    s = console.sessions.create(user_with_role(console, "operator"))
    headers = {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}
    resp = await client.post("/api/agents/7002/state", json={"action": "login"},
                             headers=headers)
    assert resp.status == 403
    resp = await client.post("/api/agents/7001/state", json={"action": "login"},
                             headers=headers)
    # passed the access check (the ACD itself may refuse: no phone is registered here)
    assert resp.status in (200, 409)
    console.call_owner = lambda call_id: "7001" if call_id == "mine" else "7002"
    resp = await client.post("/api/calls/theirs/transfer", json={"target": "x"},
                             headers=headers)
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
    resp = await client.post("/api/calls/mine/transfer", json={"target": "x"},
                             headers=headers)
    assert resp.status == 404  # passed the access check; the call is not live


async def test_login_sets_a_strict_httponly_cookie_and_audits(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, engine, _ = app_client
    status, cookie = await login(client, "sv")
    assert status == 303
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # loopback http by default; see the secure flag below
    resp = await client.get("/console/", allow_redirects=False)
    assert resp.headers["Location"] == "/console/wallboard"
    resp = await client.get("/console/wallboard")
    assert resp.status == 200 and "ウォールボード" in await resp.text()
    resp = await client.get("/console/admin")
    assert resp.status == 403
    rows = await engine.recordings.audit_rows()
    assert [(r.actor, r.action, r.user_id) for r in rows][:1] == [("sv", "login", "sv")]


async def test_secure_flag_is_configurable(tmp_path: Path, database_url: str) -> None:
    engine = offline_engine(tmp_path)
    app = make_app(engine, ConsoleConfig(secure_cookie=True))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await app[CONSOLE].users.add("sv", "supervisor", PASSWORD)
        page = await client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None and "Secure" in page.headers["Set-Cookie"]
    finally:
        await client.close()


async def test_login_needs_the_form_token_and_is_throttled(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, engine, _ = app_client
    status, _ = await login(client, "sv", csrf="forged")
    assert status == 403
    for _ in range(5):
        status, _ = await login(client, "sv", password="wrong password!")
        assert status == 401
    status, cookie = await login(client, "sv")  # the right password, but locked now
    assert status == 429 and COOKIE not in cookie
    status, _ = await login(client, "op")  # another user is not locked
    assert status == 303
    actions = [r.action for r in await engine.recordings.audit_rows()]
    assert actions.count("login-failed") == 5 and "login-throttled" in actions


def test_throttle_and_idle_timeout_follow_the_clock() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    throttle = Throttle(2, timedelta(minutes=15), lambda: now[0])
    throttle.failed("k")
    throttle.failed("k")
    assert throttle.blocked("k")
    now[0] += timedelta(minutes=16)
    assert not throttle.blocked("k")
    sessions = Sessions(timedelta(minutes=15), lambda: now[0])
    s = sessions.create(ConsoleUser(name="a", role="admin", password_hash="", agent_id=None,
                                    disabled=False, created_at=now[0]))
    now[0] += timedelta(minutes=14)
    assert sessions.get(s.id) is s  # use keeps it alive
    now[0] += timedelta(minutes=14)
    assert sessions.get(s.id) is s
    now[0] += timedelta(minutes=16)
    assert sessions.get(s.id) is None


async def test_state_changes_need_the_csrf_token(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, engine, console = app_client
    s = console.sessions.create(user_with_role(console, "admin"))
    cookie = {"Cookie": f"{COOKIE}={s.id}"}
    resp = await client.post("/api/flows/reload", headers=cookie)
    assert resp.status == 403 and (await resp.json())["error"] == "csrf"
    resp = await client.post("/api/flows/reload", headers={**cookie, "X-CSRF-Token": "nope"})
    assert resp.status == 403
    resp = await client.post("/api/flows/reload", headers={**cookie, "X-CSRF-Token": s.csrf})
    assert resp.status == 200
    rows = await engine.recordings.audit_rows()
    assert (rows[0].actor, rows[0].action, rows[0].detail) == ("admin", "setting",
                                                              "POST /api/flows/reload")
    resp = await client.post("/console/logout", data={"csrf": "nope"}, headers=cookie)
    assert resp.status == 403
    resp = await client.post("/console/logout", data={"csrf": s.csrf}, headers=cookie,
                             allow_redirects=False)
    assert resp.status == 303 and console.sessions.get(s.id) is None


async def test_cross_site_websocket_is_refused(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, _, console = app_client
    s = console.sessions.create(user_with_role(console, "supervisor"))
    resp = await client.get("/api/events", headers={
        "Cookie": f"{COOKIE}={s.id}", "Origin": "http://evil.example"})
    assert resp.status == 403
    async with client.ws_connect("/api/events", headers={"Cookie": f"{COOKIE}={s.id}"}) as ws:
        assert not ws.closed


async def test_admin_adds_users_from_the_console(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, engine, console = app_client
    s = console.sessions.create(user_with_role(console, "admin"))
    cookie = {"Cookie": f"{COOKIE}={s.id}"}
    resp = await client.post("/console/admin/users", headers=cookie, allow_redirects=False,
                             data={"csrf": s.csrf, "name": "kanri2", "role": "supervisor",
                                   "password": "short"})
    assert resp.status == 400 and "12" in await resp.text()
    resp = await client.post("/console/admin/users", headers=cookie, allow_redirects=False,
                             data={"csrf": s.csrf, "name": "kanri2", "role": "supervisor",
                                   "password": PASSWORD})
    assert resp.status == 303
    assert "kanri2" in [u.name for u in await console.users.all()]
    stored = next(u for u in await console.users.all() if u.name == "kanri2")
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    status, _ = await login(client, "kanri2")
    assert status == 303
    assert ("admin", "user-add") in [(r.actor, r.action)
                                     for r in await engine.recordings.audit_rows()]


async def test_pages_are_japanese_first_with_an_english_toggle(
        app_client: tuple[TestClient, Engine, Console]) -> None:
    client, _, _ = app_client
    resp = await client.get("/console/login")
    text = await resp.text()
    assert '<html lang="ja">' in text and "ログイン" in text
    resp = await client.get("/console/login?lang=en")
    assert "Log in" in await resp.text() and "madoguchi_lang=en" in resp.headers.getall(
        "Set-Cookie")[0]
    resp = await client.get("/console/login")  # the choice is kept
    assert '<html lang="en">' in await resp.text()
    resp = await client.get("/console/static/console.js")
    assert resp.status == 200


def test_users_cli_adds_the_first_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = offline_config(tmp_path)
    base = ["--config", str(config), "--state", str(tmp_path / "state"), "users"]
    monkeypatch.setattr("sys.stdin", io.StringIO("tooshort\n"))
    assert main([*base, "add", "--role", "admin", "--password-stdin", "kanri"]) == 2
    assert "12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*base, "add", "--role", "admin", "--password-stdin", "kanri"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*base, "add", "--role", "operator", "--password-stdin", "op"]) == 2
    assert "extension" in capsys.readouterr().err
    assert main([*base, "list"]) == 0
    assert "kanri\tadmin" in capsys.readouterr().out
