"""HTTP API: interaction records, KPIs, staffing. Thin: parsing and JSON around KpiService."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from core.access import READERS, STAFF, SUPERVISORS, Role, Routes
from core.errors import json_object
from core.identity import actor_of

from . import schemas
from .errors import NotYourCall
from .formulas import TARGETS, Kpi
from .satisfaction import (
    CITIZEN_TARGET,
    STAFF_TARGET,
    Citizen,
    by_period,
    citizen,
    citizen_by,
    staff,
)
from .schemas import parse_time, period
from .service import KpiService, call_facts, interaction_json
from .staffing import plan

KPI: web.AppKey[KpiService] = web.AppKey("kpi", KpiService)
# the period parsers live in .schemas; the command line and the monthly report also import
# them from here
__all__ = ["KPI", "add_routes", "kpi_report", "parse_time", "period", "staffing_report"]


async def kpi_report(service: KpiService, start: datetime, end: datetime,
                     svc: str | None, by: str | None,
                     short_abandon_s: float | None = None) -> dict[str, Any]:
    by, short_abandon_s = schemas.grouping(by), schemas.short_abandon(short_abandon_s)
    short = service.short_abandon_s if short_abandon_s is None else short_abandon_s
    total, groups = await service.kpis(start, end, svc, by, short)
    callbacks = await service.callbacks(start, end, svc, total)
    answers = await service.survey_answers(start, end, svc)
    by_key = citizen_by(answers, by_period(by)) if by is not None else {}
    keys = sorted({*groups, *by_key})
    return {"from": start.isoformat(), "to": end.isoformat(), "service": svc, "by": by,
            "targets": dict(TARGETS), "short_abandon_s": short,
            "satisfaction_targets": {"citizen": CITIZEN_TARGET, "staff": STAFF_TARGET},
            "total": total.as_json(),
            # beside the answer rate: what became of the callbacks these calls booked
            "callbacks": callbacks.as_json(),
            "satisfaction": {
                "citizen": citizen(answers).as_json(),
                "by_service": {k: c.as_json()
                               for k, c in citizen_by(answers, lambda a: a.service).items()},
                "by_operator": {k: c.as_json()
                                for k, c in citizen_by(answers, lambda a: a.agent_id).items()},
                # centre-wide: a one-service query shows the centre's staff score too
                "staff": staff(await service.staff_ratings(start, end)).as_json()},
            "groups": [{"key": k, **groups.get(k, Kpi()).as_json(),
                        "satisfaction": by_key.get(k, Citizen()).as_json()} for k in keys]}


async def staffing_report(service: KpiService, start: datetime, end: datetime,
                          svc: str | None, max_occupancy: float = 1.0,
                          shrinkage: float = 0.0) -> dict[str, Any]:
    max_occupancy, shrinkage = schemas.staffing_shares(max_occupancy, shrinkage)
    total, _ = await service.kpis(start, end, svc)
    rows = await service.calls(start, end, svc)
    out = plan(call_facts(rows), aht_s=total.aht_s, max_occupancy=max_occupancy,
               shrinkage=shrinkage)
    return {"from": start.isoformat(), "to": end.isoformat(), "service": svc, **out}


async def get_kpi(request: web.Request) -> web.Response:
    service = request.app[KPI]
    q = schemas.kpi_query(request.query, service.clock())
    body = await kpi_report(service, q.start, q.end, q.service, q.by, q.short_abandon_s)
    return web.json_response(body)


async def get_staffing(request: web.Request) -> web.Response:
    service = request.app[KPI]
    q = schemas.staffing_query(request.query, service.clock())
    body = await staffing_report(service, q.start, q.end, q.service, q.max_occupancy,
                                 q.shrinkage)
    return web.json_response(body)


async def post_interaction(request: web.Request) -> web.Response:
    """Supervisors, admins and the API token record any answered call; an operator only a
    call they answered, in their own name (else anyone could forge another's FCR and block
    the real record with a 409)."""
    data = await json_object(request)
    actor = actor_of(request)
    is_operator = actor.role == Role.OPERATOR
    operator = actor.agent_id if is_operator else None
    kpi = request.app[KPI]
    new = schemas.interaction(data, kpi.known_agents)
    if is_operator:
        if operator is None or new.agent_id not in (None, operator):
            raise NotYourCall("an operator records interactions in their own name only")
    row = await kpi.add_interaction(new, answered_by=operator)
    return web.json_response(interaction_json(row), status=201)


async def list_interactions(request: web.Request) -> web.Response:
    service = request.app[KPI]
    q = schemas.period_query(request.query, service.clock())
    rows = await service.interactions(q.start, q.end, q.service)
    return web.json_response({"interactions": [interaction_json(r) for r in rows]})


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    r.get("/api/kpi", get_kpi, SUPERVISORS)
    r.get("/api/kpi/staffing", get_staffing, SUPERVISORS)
    r.post("/api/interactions", post_interaction, STAFF)
    r.get("/api/interactions", list_interactions, READERS)
