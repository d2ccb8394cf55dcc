"""HTTP API of satisfaction: marking a live call for the post-call survey, and the city
staff's monthly ratings. Thin: parsing and JSON around SurveyService."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.access import ADMIN_ONLY, READERS, STAFF, Role, Routes
from core.errors import json_object
from core.identity import actor_of
from core.satisfaction import STAFF_TARGET, score
from store.models import StaffRating

from . import schemas
from .errors import NotYourCall
from .service import SurveyService

SURVEY: web.AppKey[SurveyService] = web.AppKey("survey", SurveyService)
RATERS = frozenset({Role.CITY_VIEWER, *ADMIN_ONLY})  # the city's side rates the service
CITY_SIDE = RATERS  # sees who gave which rating; the contractor's supervisors do not


def rating_json(row: StaffRating, with_rater: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "month": row.month, "points": round(row.points, 1),
                           "given": row.given, "scale": row.scale, "comment": row.comment,
                           "created_at": row.created_at.isoformat()}
    if with_rater:
        out["rater"] = row.rater
    return out


async def mark_call(request: web.Request) -> web.Response:
    """Operators mark only the call they are talking on; supervisors, admins and the API
    token any connected call."""
    actor = actor_of(request)
    operator = actor.agent_id if actor.role == Role.OPERATOR else None
    if actor.role == Role.OPERATOR and operator is None:
        raise NotYourCall()
    call = await request.app[SURVEY].mark(request.match_info["id"], operator)
    return web.json_response({"call_id": call.id, "survey": True, "agent_id": call.agent_id})


async def post_rating(request: web.Request) -> web.Response:
    service = request.app[SURVEY]
    new = schemas.rating(await json_object(request), service.clock())
    row, created = await service.rate(new, actor_of(request).name)
    return web.json_response(rating_json(row, True), status=201 if created else 200)


async def get_ratings(request: web.Request) -> web.Response:
    service = request.app[SURVEY]
    month = schemas.month(request.query.get("month"), service.clock())
    rows = await service.ratings(month)
    value = score(r.points for r in rows)
    with_rater = actor_of(request).role in (*CITY_SIDE, None)  # None: the API token
    return web.json_response({
        "month": month, "target": STAFF_TARGET, "ratings_count": len(rows),
        "score": None if value is None else round(value, 1),
        "met": None if value is None else value >= STAFF_TARGET,
        "ratings": [rating_json(r, with_rater) for r in rows]})


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    r.post("/api/calls/{id}/survey", mark_call, STAFF)  # operators: own call
    r.post("/api/staff-satisfaction", post_rating, RATERS)
    r.get("/api/staff-satisfaction", get_ratings, READERS)


__all__ = ["SURVEY", "add_routes"]
