"""Who made a request, as the web app's access check found it: a console user or the API
token's holder. Handlers read it for the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Actor:
    """Who is asking: a console user (user_id, role and, for operators, their extension
    set) or the API token's holder."""

    name: str
    client: str
    user_id: str | None = None
    role: str | None = None
    agent_id: str | None = None


ACTOR: web.RequestKey[Actor] = web.RequestKey("actor", Actor)


def actor_of(request: web.Request) -> Actor:
    found = request.get(ACTOR)
    if isinstance(found, Actor):
        return found
    return Actor("api-token", request.remote or "unknown")
