"""Users, roles, sessions and the access check every request passes.

Two identities reach the app: the API token (a machine identity with the admin role, for
scripts and the tests) and console users logged in with a session cookie. Every route has
the roles its feature declared where it registered it (core.access); a route nobody declared is
admin-only, so a new API is never open by accident. Cookie sessions also need the CSRF
token on every state-changing request.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.access import ROLES, Role, policy_of, roles_for
from core.environ import Environ, resolve
from core.errors import ascii_decimal, ascii_digits, json_error
from core.identity import ACTOR, Actor
from core.yamlconf import ConfigError
from store.db import Database
from store.models import AuditEntry

from .models import ConsoleUser
from .sessions import Session as Session
from .sessions import Sessions as Sessions

ADMIN, SUPERVISOR, OPERATOR, CITY_VIEWER = (Role.ADMIN.value, Role.SUPERVISOR.value,
                                           Role.OPERATOR.value, Role.CITY_VIEWER.value)
HOME = {ADMIN: "/console/admin", SUPERVISOR: "/console/wallboard", OPERATOR: "/console/desk",
        CITY_VIEWER: "/console/viewer"}
# state changes under these prefixes are settings: audited whoever makes them
SETTING_PREFIXES = ("/api/flows", "/api/schedules", "/api/board", "/api/closures")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
COOKIE = "madoguchi_session"
LOGIN_COOKIE = "madoguchi_login"  # CSRF token of the login form, before any session
MIN_PASSWORD = 12
MAX_NAME = 64
# letters (any script), digits, - _ . : what `Users.add` accepts, checked before any lookup
_NAME = re.compile(rf"[\w.-]{{1,{MAX_NAME}}}")
HASH_WORKERS = 2  # argon2 threads: a burst of logins queues here, not on the event loop
HASH_NICE = 10  # their CPU priority below the loop's (Linux)
MAX_IDLE_MINUTES = 24 * 60
T = TypeVar("T")

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ConsoleConfig:
    secure_cookie: bool = False  # the engine listens on loopback http; set behind TLS
    idle: timedelta = timedelta(minutes=15)
    max_failures: int = 5  # per user name, within `lockout`
    max_failures_per_client: int = 20
    lockout: timedelta = timedelta(minutes=15)

    @classmethod
    def from_env(cls, env: Environ | None = None) -> ConsoleConfig:
        """From the environment's overrides (core/environ.py; read now when not given)."""
        env = resolve(env)
        return cls(secure_cookie=env.console_secure_cookie,
                   idle=timedelta(minutes=_idle_minutes(env.console_idle_minutes)))


def _idle_minutes(raw: str) -> float:
    """float() would also take '１５', 'nan' or '1e9' (then timedelta fails at start)."""
    value = float(raw) if ascii_decimal(raw.strip()) else 0.0
    if not 0 < value <= MAX_IDLE_MINUTES:
        raise ConfigError(None, f"MADOGUCHI_CONSOLE_IDLE_MINUTES must be a number of minutes "
                          f"above 0 and at most {MAX_IDLE_MINUTES}, got {raw!r}")
    return value


class UserError(ValueError):
    pass


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _valid_extension(agent_id: str) -> bool:
    return ascii_digits(agent_id) and len(agent_id) <= 16


def _yield_cpu() -> None:
    """On Linux a thread's nice value is its own, and argon2's lane threads inherit it: on
    a small host the event loop (calls) gets the CPU before a burst of password checks."""
    if sys.platform == "linux":
        os.nice(HASH_NICE)


class Users:
    """Argon2 costs tens of milliseconds of CPU per hash: it runs in a small thread pool
    (opened and closed with the web app), never on the event loop that also serves AMI,
    FastAGI and the ACD. Without the app (the CLI) a one-off thread does it."""

    def __init__(self, db: Database, clock: Clock = _now,
                 extensions: Collection[str] | None = None) -> None:
        self.db = db
        self.clock = clock
        # the operators' extensions config/agents.yaml defines (None: not checked)
        self.extensions = None if extensions is None else tuple(extensions)
        self.hasher = PasswordHasher()  # argon2id with the library's current defaults
        # verified against when the user does not exist, so both paths cost the same
        self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        self._pool: ThreadPoolExecutor | None = None

    def open_pool(self, workers: int = HASH_WORKERS) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="argon2",
                                            initializer=_yield_cpu)

    async def close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # waiting for a running hash must not hold the loop either
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            return await asyncio.to_thread(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _check_extension(self, agent_id: str | None) -> None:
        if agent_id is not None and not _valid_extension(agent_id):
            raise UserError("the operator extension must be digits 0-9")
        if agent_id is not None and self.extensions is not None \
                and agent_id not in self.extensions:
            raise UserError(f"no operator with extension {agent_id} in config/agents.yaml "
                            f"(configured: {', '.join(self.extensions) or 'none'})")

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def add(self, name: str, role: str, password: str, agent_id: str | None = None,
                  replace: bool = False) -> None:
        if not valid_name(name):
            raise UserError(f"user names are letters, digits, - _ . (at most {MAX_NAME})")
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise UserError(f"passwords need at least {MIN_PASSWORD} characters")
        self._check_extension(agent_id)
        if role == OPERATOR and agent_id is None:
            raise UserError("an operator needs their extension (--agent)")
        password_hash = await self._off_loop(self.hasher.hash, password)
        async with self.db.sessions() as session, session.begin():
            existing = await session.get(ConsoleUser, name)
            if existing is not None and not replace:
                raise UserError(f"user {name} exists")
            if existing is not None and role != ADMIN \
                    and not await self._admin_left(session, existing):
                raise UserError(f"{name} is the last enabled admin: "
                                "enable or add another admin first")
            if existing is not None:
                await session.delete(existing)
                await session.flush()
            session.add(ConsoleUser(name=name, role=role, password_hash=password_hash,
                                    agent_id=agent_id, disabled=False, created_at=self.clock()))

    async def change(self, name: str, role: str | None = None, agent_id: str | None = None,
                     disabled: bool | None = None) -> tuple[ConsoleUser, ConsoleUser]:
        """Change a user's role (with the extension) or disabled flag; (before, after)."""
        if role is not None:
            if role not in ROLES:
                raise UserError(f"role must be one of {', '.join(ROLES)}")
            self._check_extension(agent_id)
            if role == OPERATOR and agent_id is None:
                raise UserError("an operator needs their extension")
        async with self.db.sessions() as session, session.begin():
            user = await session.get(ConsoleUser, name)
            if user is None:
                raise UserError(f"no user {name}")
            if (disabled or (role is not None and role != ADMIN)) \
                    and not await self._admin_left(session, user):
                raise UserError(f"{name} is the last enabled admin: "
                                "enable or add another admin first")
            before = ConsoleUser(name=user.name, role=user.role, password_hash="",
                                 agent_id=user.agent_id, disabled=user.disabled,
                                 created_at=user.created_at)
            if role is not None:
                user.role, user.agent_id = role, agent_id
            if disabled is not None:
                user.disabled = disabled
            after = ConsoleUser(name=user.name, role=user.role, password_hash="",
                                agent_id=user.agent_id, disabled=user.disabled,
                                created_at=user.created_at)
        return before, after

    async def remove(self, name: str) -> ConsoleUser:
        """Delete a user (their audit rows stay: the log names people, not table rows)."""
        async with self.db.sessions() as session, session.begin():
            user = await session.get(ConsoleUser, name)
            if user is None:
                raise UserError(f"no user {name}")
            if not await self._admin_left(session, user):
                raise UserError(f"{name} is the last enabled admin: "
                                "enable or add another admin first")
            await session.delete(user)
        return user

    @staticmethod
    async def _admin_left(session: AsyncSession, user: ConsoleUser) -> bool:
        """Whether an enabled admin remains once `user` loses its admin rights: without
        one, nobody can open the admin page."""
        if user.role != ADMIN or user.disabled:
            return True
        other = await session.scalar(select(ConsoleUser.name).where(
            ConsoleUser.role == ADMIN, ConsoleUser.disabled.is_(False),
            ConsoleUser.name != user.name).limit(1))
        return other is not None

    async def all(self) -> list[ConsoleUser]:
        async with self.db.sessions() as session:
            return list((await session.scalars(select(ConsoleUser).order_by(
                ConsoleUser.name))).all())

    async def verify(self, name: str, password: str) -> ConsoleUser | None:
        user: ConsoleUser | None = None
        if valid_name(name):  # no other name exists: not worth a database lookup
            async with self.db.sessions() as session:
                user = await session.get(ConsoleUser, name)
        ok = await self._off_loop(self._check, user.password_hash if user else self._dummy,
                                  password)
        if not ok or user is None or user.disabled:
            return None
        return user


@dataclass
class Throttle:
    """Login attempts per key within a sliding window; a locked key waits the window out.

    An attempt is counted when it starts, before its password is checked, so concurrent
    attempts cannot all pass the check while the first ones are still being verified.
    Keys whose attempts are all older than the window are dropped (at most once a window,
    or when there are more than `max_keys`), so sprayed user names do not pile up."""

    limit: int
    window: timedelta
    clock: Clock = _now
    max_keys: int = 10_000
    _failures: dict[str, list[datetime]] = field(default_factory=dict)
    _pruned: datetime | None = None

    def _recent(self, key: str) -> list[datetime]:
        cutoff = self.clock() - self.window
        kept = [t for t in self._failures.get(key, []) if t > cutoff]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, key: str) -> bool:
        return len(self._recent(key)) >= self.limit

    def failed(self, key: str) -> None:
        """Count one attempt (or failure) for `key` now."""
        now = self.clock()
        if (self._pruned is None or now - self._pruned > self.window
                or len(self._failures) >= self.max_keys):
            self.prune()
        self._failures.setdefault(key, []).append(now)

    def forgive(self, key: str) -> None:
        """Take back the latest attempt of `key` (it succeeded)."""
        times = self._failures.get(key)
        if times:
            times.pop()
            if not times:
                del self._failures[key]

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def prune(self) -> None:
        now = self.clock()
        self._pruned = now
        cutoff = now - self.window
        self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > cutoff}
        if len(self._failures) >= self.max_keys:
            # still full of live keys: the least recently tried half goes
            by_age = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for k in by_age[:len(by_age) // 2 + 1]:
                del self._failures[k]

    def __len__(self) -> int:
        return len(self._failures)


async def audit(db: Database, at: datetime, actor: Actor, action: str,
                detail: str = "") -> None:
    """One audit row; the console and the `users` command line write the same shape."""
    await db.add(AuditEntry(at=at, actor=actor.name[:64], user_id=actor.user_id,
                            client=actor.client[:64], action=action[:24],
                            detail=detail[:2000]), what=f"audit {action}")


SESSION: web.RequestKey[Session] = web.RequestKey("console_session", Session)


class Console:
    def __init__(self, db: Database, api_token: str, config: ConsoleConfig,
                 call_owner: Callable[[str], str | None], clock: Clock = _now,
                 metrics_token: str = "", extensions: Collection[str] | None = None) -> None:
        self.db = db
        self.api_token = api_token
        self.metrics_token = metrics_token
        self.config = config
        self.call_owner = call_owner  # live call id -> operator extension connected to it
        self.clock = clock
        self.users = Users(db, clock, extensions)
        self.sessions = Sessions(config.idle, clock, db)
        self.user_throttle = Throttle(config.max_failures, config.lockout, clock)
        self.client_throttle = Throttle(config.max_failures_per_client, config.lockout, clock)

    async def start(self) -> None:
        self.users.open_pool()
        await self.sessions.start()  # those of before a restart

    async def close(self) -> None:
        await self.sessions.close()
        await self.users.close_pool()

    def login_keys(self, name: str, client: str) -> tuple[str, str]:
        # a name no user can have still counts, under at most MAX_NAME characters
        return f"user:{name[:MAX_NAME]}", f"client:{client[:64]}"

    def begin_login(self, name: str, client: str) -> bool:
        """Count a login attempt before its password is checked; False when locked. No
        await in here: concurrent attempts are counted one after the other."""
        user_key, client_key = self.login_keys(name, client)
        if self.user_throttle.blocked(user_key) or self.client_throttle.blocked(client_key):
            return False
        self.user_throttle.failed(user_key)
        self.client_throttle.failed(client_key)
        return True

    def login_succeeded(self, name: str, client: str) -> None:
        user_key, client_key = self.login_keys(name, client)
        self.user_throttle.clear(user_key)
        self.client_throttle.forgive(client_key)  # only failures count against an address

    async def audit(self, actor: Actor, action: str, detail: str = "") -> None:
        await audit(self.db, self.clock(), actor, action, detail)

    def set_session_cookie(self, resp: web.StreamResponse, sid: str) -> None:
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/",
                        secure=self.config.secure_cookie)

    # ---- the access check ---------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        method = "GET" if request.method == "HEAD" else request.method
        api = not route.startswith("/console")
        roles = roles_for(policy_of(request.app), method, route)
        if roles is None:  # public
            sid = request.cookies.get(COOKIE)
            found = self.sessions.get(sid) if sid else None
            if found is not None:
                request[SESSION] = found
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, given = header.partition(" ")
            if self._metrics_token(scheme, given):
                # the scraper's token reads the metrics; it is no key to anything else
                if (method, route) != ("GET", "/metrics"):
                    raise json_error(403, "forbidden", "the metrics token opens /metrics only")
                request[ACTOR] = Actor("metrics-token", request.remote or "unknown")
                return await handler(request)
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    given.encode(), self.api_token.encode()):
                raise json_error(401, "unauthorized", "a valid API token is required")
            if not api:  # pages are for people: they log in
                raise web.HTTPSeeOther("/console/login")
            # the token is the machine identity: full rights, no CSRF (no cookie involved)
            request[ACTOR] = Actor("api-token", request.remote or "unknown")
            return await self._run(request, handler, method, route)
        sid = request.cookies.get(COOKIE)
        s = self.sessions.get(sid) if sid else None
        if s is None:
            if api:
                raise json_error(401, "unauthorized", "a valid API token or a login is "
                                 "required")
            raise web.HTTPSeeOther("/console/login?next=" + quote(request.path_qs, safe=""))
        request[SESSION] = s
        request[ACTOR] = Actor(s.user, request.remote or "unknown", s.user, s.role, s.agent_id)
        if s.role not in roles or not self._owns(s, route, request):
            if api:
                raise json_error(403, "forbidden", "your role may not use this")
            raise web.HTTPForbidden(text="403: your role may not open this page",
                                    content_type="text/plain")
        if method not in SAFE_METHODS and not await self._csrf_ok(request, s):
            raise json_error(403, "csrf", "missing or wrong CSRF token")
        if route == "/api/events":
            # a WebSocket carries the cookie cross-site unless the origin is ours
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                raise json_error(403, "forbidden", "cross-origin WebSocket refused")
            # the socket lives as long as its session: logout, a role change or a disable
            # cancels it and the browser sees the connection close
            task = asyncio.current_task()
            if task is not None:
                self.sessions.hold(s.id, task)
                try:
                    return await self._run(request, handler, method, route)
                finally:
                    self.sessions.release(s.id, task)
        return await self._run(request, handler, method, route)

    def _metrics_token(self, scheme: str, given: str) -> bool:
        return bool(self.metrics_token) and scheme.lower() == "bearer" and \
            hmac.compare_digest(given.encode(), self.metrics_token.encode())

    async def _run(self, request: web.Request, handler: Handler, method: str,
                   route: str) -> web.StreamResponse:
        resp = await handler(request)
        if method not in SAFE_METHODS and route.startswith(SETTING_PREFIXES) \
                and resp.status < 400:
            await self.audit(request[ACTOR], "setting", f"{method} {request.path}")
        return resp

    def _owns(self, s: Session, route: str, request: web.Request) -> bool:
        if s.role != OPERATOR:
            return True
        if route == "/api/agents/{id}/state":
            return request.match_info["id"] == s.agent_id
        if route == "/api/calls/{id}/transfer":
            return self.call_owner(request.match_info["id"]) == s.agent_id
        return True

    async def _csrf_ok(self, request: web.Request, s: Session) -> bool:
        given = request.headers.get("X-CSRF-Token")
        if given is None and request.content_type in ("application/x-www-form-urlencoded",
                                                       "multipart/form-data"):
            field_value = (await request.post()).get("csrf")
            given = field_value if isinstance(field_value, str) else None
        return given is not None and hmac.compare_digest(given.encode(), s.csrf.encode())
