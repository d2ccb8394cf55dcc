"""Roles, and routes that declare who may call them where they are registered.

Every feature registers its routes through a `Routes` table with the roles allowed on each;
the table records them in the application's policy, which the access check (console.auth's
middleware) reads for every request. A route registered without roles is refused to everyone
but admins, so a new API is never open by accident; `PUBLIC` marks the few routes reachable
without logging in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    CITY_VIEWER = "city_viewer"


ROLES: tuple[str, ...] = tuple(Role)
STAFF = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR})
SUPERVISORS = frozenset({Role.ADMIN, Role.SUPERVISOR})
READERS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.CITY_VIEWER})  # records, recordings
ANYONE = frozenset(ROLES)
ADMIN_ONLY = frozenset({Role.ADMIN})
PUBLIC: frozenset[str] | None = None  # no login needed

Policy = dict[tuple[str, str], frozenset[str] | None]
POLICY: web.AppKey[Policy] = web.AppKey("policy", dict)


def policy_of(app: web.Application) -> Policy:
    """(method, route as registered) -> roles, or None for a public route."""
    if POLICY not in app:
        app[POLICY] = {}
    return app[POLICY]


def roles_for(policy: Policy, method: str, route: str) -> frozenset[str] | None:
    """The roles allowed on a route (HEAD follows GET); None means public; a route nobody
    declared is admin-only."""
    return policy.get(("GET" if method == "HEAD" else method, route), ADMIN_ONLY)


class Routes:
    """A feature's routes on one app, each with the roles that may call it."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.policy = policy_of(app)

    def add(self, method: str, path: str, handler: Handler,
            roles: frozenset[str] | None) -> None:
        key = (method, path)
        if key in self.policy:
            raise ValueError(f"route {method} {path} registered twice")
        self.policy[key] = roles
        if method == "GET":
            self.app.router.add_get(path, handler)  # and HEAD, as aiohttp does
        else:
            self.app.router.add_route(method, path, handler)

    def get(self, path: str, handler: Handler, roles: frozenset[str] | None) -> None:
        self.add("GET", path, handler, roles)

    def post(self, path: str, handler: Handler, roles: frozenset[str] | None) -> None:
        self.add("POST", path, handler, roles)

    def static(self, prefix: str, folder: Path) -> None:
        """Public static files (style sheets, scripts): no personal data."""
        self.policy[("GET", prefix)] = PUBLIC
        self.app.router.add_static(prefix, folder, append_version=True)
