"""HTTP API: interaction records, KPIs, staffing. Thin: parsing and JSON around KpiService."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from core.access import READERS, STAFF, SUPERVISORS, Role, Routes
from core.clock import CITY_TZ
from core.errors import ascii_decimal, json_object
from core.identity import actor_of

from .errors import BadQuery, InvalidRecord, NotYourCall
from .formulas import BUCKETS, TARGETS
from .service import KpiService, call_facts, interaction_json, parse_interaction
from .staffing import plan

KPI: web.AppKey[KpiService] = web.AppKey("kpi", KpiService)


def parse_time(raw: str, end: bool = False) -> datetime:
    """ISO 8601 date (a whole Tokyo day; as an end, inclusive), month (YYYY-MM) or time."""
    try:
        if len(raw) == 7:
            d = date.fromisoformat(raw + "-01")
            if end:
                d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
            return datetime.combine(d, time(), CITY_TZ)
        if len(raw) == 10:
            d = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
            return datetime.combine(d, time(), CITY_TZ)
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadQuery(f"{raw!r} is not an ISO 8601 date, month or time") from exc
    return value if value.tzinfo else value.replace(tzinfo=CITY_TZ)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(now.astimezone(CITY_TZ).date().replace(day=1), time(), CITY_TZ)
    return start, parse_time(start.strftime("%Y-%m"), end=True)


def period(query: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """from/to from the query; the current Tokyo month when both are missing."""
    start, end = month_bounds(now)
    if query.get("from"):
        start = parse_time(query["from"])
    if query.get("to"):
        end = parse_time(query["to"], end=True)
    if end <= start:
        raise BadQuery("`to` must be after `from`")
    return start, end


async def kpi_report(service: KpiService, start: datetime, end: datetime,
                     svc: str | None, by: str | None,
                     short_abandon_s: float | None = None) -> dict[str, Any]:
    if by is not None and by not in BUCKETS:
        raise BadQuery(f"by must be one of {', '.join(BUCKETS)}")
    if short_abandon_s is not None and not 0 <= short_abandon_s <= 600:
        raise BadQuery("short_abandon_s must be between 0 and 600 seconds")
    short = service.short_abandon_s if short_abandon_s is None else short_abandon_s
    total, groups = await service.kpis(start, end, svc, by, short)
    return {"from": start.isoformat(), "to": end.isoformat(), "service": svc, "by": by,
            "targets": dict(TARGETS), "short_abandon_s": short,
            "total": total.as_json(),
            "groups": [{"key": k, **g.as_json()} for k, g in groups.items()]}


async def staffing_report(service: KpiService, start: datetime, end: datetime,
                          svc: str | None, max_occupancy: float = 1.0,
                          shrinkage: float = 0.0) -> dict[str, Any]:
    if not 0 < max_occupancy <= 1 or not 0 <= shrinkage < 1:
        raise BadQuery("max_occupancy must be in (0, 1] and shrinkage in [0, 1)")
    total, _ = await service.kpis(start, end, svc)
    rows = await service.calls(start, end, svc)
    out = plan(call_facts(rows), aht_s=total.aht_s, max_occupancy=max_occupancy,
               shrinkage=shrinkage)
    return {"from": start.isoformat(), "to": end.isoformat(), "service": svc, **out}


def _number(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if not raw:
        return None
    if not ascii_decimal(raw):
        raise BadQuery(f"{name} must be a decimal number like 0.85")
    return float(raw)


async def get_kpi(request: web.Request) -> web.Response:
    service = request.app[KPI]
    q = request.query
    start, end = period(q, service.clock())
    short = _number(q, "short_abandon_s")
    body = await kpi_report(service, start, end, q.get("service") or None,
                            q.get("by") or None, short)
    return web.json_response(body)


async def get_staffing(request: web.Request) -> web.Response:
    service = request.app[KPI]
    q = request.query
    start, end = period(q, service.clock())
    occ, shrink = _number(q, "max_occupancy"), _number(q, "shrinkage")
    body = await staffing_report(service, start, end, q.get("service") or None,
                                 1.0 if occ is None else occ,
                                 0.0 if shrink is None else shrink)
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
    new = parse_interaction(data)
    if new.agent_id is not None and new.agent_id not in kpi.known_agents:
        raise InvalidRecord("agent_id", f"agent_id {new.agent_id!r} is not a known "
                            "operator's extension")
    if is_operator:
        if operator is None or new.agent_id not in (None, operator):
            raise NotYourCall("an operator records interactions in their own name only")
    row = await request.app[KPI].add_interaction(new, answered_by=operator)
    return web.json_response(interaction_json(row), status=201)


async def list_interactions(request: web.Request) -> web.Response:
    service = request.app[KPI]
    start, end = period(request.query, service.clock())
    rows = await service.interactions(start, end, request.query.get("service") or None)
    return web.json_response({"interactions": [interaction_json(r) for r in rows]})


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    r.get("/api/kpi", get_kpi, SUPERVISORS)
    r.get("/api/kpi/staffing", get_staffing, SUPERVISORS)
    r.post("/api/interactions", post_interaction, STAFF)
    r.get("/api/interactions", list_interactions, READERS)
