"""The console's test users (one per role, all with one password) and their sessions, for the
`app_client` fixture (tests/conftest.py) and the console's tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp.test_utils import TestClient

from console.auth import COOKIE, Console, Session
from console.models import ConsoleUser
from madoguchi.engine import Engine

PASSWORD = "correct horse battery"
USERS = {"admin": ("admin", None), "sv": ("supervisor", None), "op": ("operator", "7001"),
         "city": ("city_viewer", None)}
BY_ROLE = {role: name for name, (role, _) in USERS.items()}

App = tuple[TestClient, Engine, Console]


def user_with_role(console: Console, role: str) -> ConsoleUser:
    name = BY_ROLE[role]
    _, agent = USERS[name]
    return ConsoleUser(name=name, role=role, password_hash="", agent_id=agent, disabled=False,
                       created_at=datetime.now(UTC))


def admin_session(console: Console) -> tuple[Session, dict[str, str]]:
    s = console.sessions.create(user_with_role(console, "admin"))
    return s, {"Cookie": f"{COOKIE}={s.id}", "X-CSRF-Token": s.csrf}


async def login(client: TestClient, name: str, password: str = PASSWORD,
                csrf: str | None = None) -> tuple[int, str]:
    page = await client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    resp = await client.post("/console/login", data={
        "name": name, "password": password, "csrf": csrf or token.group(1)},
        allow_redirects=False)
    return resp.status, resp.headers.get("Set-Cookie", "")
