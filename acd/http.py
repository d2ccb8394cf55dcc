"""HTTP API of the ACD: operators' states, waiting lines, transfers, supervision, live events."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web

from core.access import STAFF, SUPERVISORS, Routes
from core.clock import CITY_TZ
from core.errors import json_error, json_object
from core.identity import actor_of

from . import schemas
from .agents import IllegalTransition
from .callbacks import IllegalCallbackTransition, is_virtual
from .errors import UnknownOperator
from .stats import per_operator
from .supervision import Supervision
from .wiring import ACD, AcdParts

log = logging.getLogger(__name__)


def _agent_view(parts: AcdParts, agent_id: str, today: dict[str, dict[str, float]]
                ) -> dict[str, Any]:
    a = parts.acd.agents[agent_id]
    ring = parts.acd.call_of_agent(agent_id) or parts.acd.callback_ringing(agent_id)
    return {
        "id": a.id, "state": a.state.value, "reason": a.reason, "reachable": a.reachable,
        "queues": list(a.queues),
        "state_since": a.state_since.isoformat() if a.state_since else None,
        "idle_since": a.idle_since.isoformat(),
        "call": None if ring is None else {"call_id": ring.call.id, "caller": ring.call.caller,
                                           "service": ring.call.service,
                                           "language": ring.call.language,
                                           "topic": ring.call.topic,
                                           "flow_path": list(ring.call.flow_path),
                                           "queued_at": ring.call.queued_at.isoformat()
                                           if ring.call.queued_at else None,
                                           # a screen pop that says it: we call them back
                                           "callback": is_virtual(ring.call)},
        "today": today.get(a.id, {"calls": 0, "talk_s": 0.0}),
    }


async def list_agents(request: web.Request) -> web.Response:
    parts = request.app[ACD]
    today = await per_operator(parts.db, datetime.now(CITY_TZ).date())
    return web.json_response({"agents": [_agent_view(parts, i, today)
                                         for i in sorted(parts.acd.agents)]})


async def set_agent_state(request: web.Request) -> web.Response:
    parts = request.app[ACD]
    agent_id = request.match_info["id"]
    if agent_id not in parts.acd.agents:
        raise UnknownOperator()
    change = schemas.state_change(await json_object(request))
    try:
        parts.acd.operator_action(agent_id, change.action, change.reason)
    except IllegalTransition as exc:
        raise json_error(409, "illegal_transition", str(exc)) from exc
    today = await per_operator(parts.db, datetime.now(CITY_TZ).date())
    return web.json_response(_agent_view(parts, agent_id, today))


async def operator_stats(request: web.Request) -> web.Response:
    day = schemas.stats_day(request.query.get("date"), datetime.now(CITY_TZ).date())
    stats = await per_operator(request.app[ACD].db, day)
    return web.json_response({"date": day.isoformat(), "operators": stats})


async def list_queues(request: web.Request) -> web.Response:
    acd = request.app[ACD].acd
    now = acd.tracker.clock()
    oldest = acd.oldest_wait(now)
    return web.json_response({"queues": [
        {"id": q, "waiting": n, "longest_wait_s": round(oldest[q], 1)}
        for q, n in acd.waiting_counts().items()]})


async def transfer_call(request: web.Request) -> web.Response:
    parts = request.app[ACD]
    call_id = request.match_info["id"]
    call = next((c for c in parts.acd.tracker.live() if c.id == call_id), None)
    if call is None:
        raise json_error(404, "not_found", "no such live call")
    if call.agent_id is None or parts.acd.call_of_agent(call.agent_id) is None:
        raise json_error(409, "not_connected", "only a call connected to an operator")
    target = schemas.transfer_target(await json_object(request), parts.settings.transfers)
    await parts.acd.transfer(call, target, call.agent_id)
    return web.json_response({"call_id": call.id, "to": target.number, "kind": target.kind})


async def monitor(request: web.Request) -> web.Response:
    parts = request.app[ACD]
    asked = schemas.monitor_request(await json_object(request))
    result = await parts.supervision.start(request.match_info["id"], asked.mode, asked.supervisor,
                                           actor=actor_of(request).name,
                                           remote=request.remote or "")
    return web.json_response(result)


async def live_events(request: web.Request) -> web.WebSocketResponse:
    """Operator state changes and waiting counts as JSON messages, as they happen."""
    parts = request.app[ACD]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    queue = parts.bus.subscribe()
    try:
        reader = asyncio.ensure_future(ws.receive())
        while not ws.closed:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await ws.send_json(getter.result())
            else:
                getter.cancel()
            if reader in done:
                if reader.result().type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                reader = asyncio.ensure_future(ws.receive())
        reader.cancel()
    finally:
        parts.bus.unsubscribe(queue)
    return ws


async def list_callbacks(request: web.Request) -> web.Response:
    """Open callbacks with their numbers (personal data: the access is audited)."""
    parts = request.app[ACD]
    actor = actor_of(request)
    rows = parts.acd.open_callbacks()
    await parts.supervision.audit(actor.name, "view-callbacks", "",
                                  f"{len(rows)} open callbacks", request.remote or "")
    return web.json_response({"callbacks": [{
        "id": cb.id, "call_id": cb.call_id, "service": cb.service, "queue": cb.queue,
        "number": cb.number, "state": cb.state.value, "attempts": cb.attempts,
        "queued_at": cb.queued_at.isoformat(), "requested_at": cb.requested_at.isoformat(),
        "not_before": cb.not_before.isoformat() if cb.not_before else None,
        "position": place} for cb, place in rows]})


async def cancel_callback(request: web.Request) -> web.Response:
    parts = request.app[ACD]
    try:
        cb = parts.acd.cancel_callback(request.match_info["id"])
    except IllegalCallbackTransition as exc:
        raise json_error(409, "callback_in_progress", str(exc)) from exc
    if cb is None:
        raise json_error(404, "not_found", "no such open callback")
    actor = actor_of(request)
    await parts.supervision.audit(actor.name, "cancel-callback", cb.call_id, cb.id,
                                  request.remote or "")
    return web.json_response({"id": cb.id, "state": cb.state.value})


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    r.get("/api/agents", list_agents, STAFF)
    r.post("/api/agents/{id}/state", set_agent_state, STAFF)  # operators: own extension
    r.post("/api/agents/{id}/monitor", monitor, SUPERVISORS)
    r.get("/api/operator-stats", operator_stats, SUPERVISORS)
    r.get("/api/queues", list_queues, STAFF)
    r.post("/api/calls/{id}/transfer", transfer_call, STAFF)  # operators: own call
    r.get("/api/events", live_events, STAFF)
    r.get("/api/callbacks", list_callbacks, SUPERVISORS)
    r.post("/api/callbacks/{id}/cancel", cancel_callback, SUPERVISORS)


__all__ = ["Supervision", "add_routes"]
