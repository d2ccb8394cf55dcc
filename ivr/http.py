"""HTTP API of the IVR: flow reload, overrides and the event board.

Every route sits behind the web app's token check; changes are POST. Errors are JSON with an
error id, like the rest of the API.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from core.access import ADMIN_ONLY, STAFF, SUPERVISORS, Routes
from core.errors import json_object

from . import admin_http, schemas
from .appkeys import IVR, SCHEDULES_LOCK

__all__ = ["IVR", "add_routes"]


async def flows_info(request: web.Request) -> web.Response:
    ivr = request.app[IVR]
    fs = ivr.current
    return web.json_response({
        "version": fs.version, "flows": sorted(fs.flows), "entry": fs.entry,
        "loaded_at": fs.loaded_at.isoformat() if fs.loaded_at else None,
        "reloads": ivr.reloads})


async def flows_reload(request: web.Request) -> web.Response:
    result = await request.app[IVR].reload()
    if not result.ok:
        return web.json_response({"error": "invalid_flows", "version": result.version,
                                  "errors": result.errors}, status=422)
    return web.json_response({"ok": True, "version": result.version})


async def schedule_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[IVR].status(request.match_info["service"]))


async def set_override(request: web.Request) -> web.Response:
    ivr = request.app[IVR]
    service = request.match_info["service"]
    asked = schemas.override_request(await json_object(request))
    remote = request.remote or "?"
    await ivr.set_override(service, asked.mode, f"api from {remote}", asked.minutes,
                           asked.message)
    return web.json_response(ivr.status(service))


async def override_history(request: web.Request) -> web.Response:
    return web.json_response({"items": request.app[IVR].overrides.history()})


async def list_events(request: web.Request) -> web.Response:
    ivr = request.app[IVR]
    now = ivr.clock()
    board = ivr.board
    items = []
    for ev in board.events:
        audio = board.audio.get(ev.id, {})
        items.append({**ev.to_json(), "published": ev.published(now),
                      "announcements": {lang: a.text for lang, a in audio.items()}})
    statuses = {s.id: s.label for s in ivr.current.board.statuses.values()}
    return web.json_response({"items": items, "statuses": statuses, "version": board.version})


async def board_now(request: web.Request) -> web.Response:
    """What a caller would hear now, per language, with the files Asterisk plays."""
    ivr = request.app[IVR]
    world = ivr.world()
    lang = schemas.board_language(request.query)
    items = world.board(ivr.clock(), lang)
    return web.json_response({"language": lang, "items": [
        {"key": a.key, "text": a.text, "sound": ivr.sound_path(a), "spoken": a.spoken}
        for a in items]})


async def put_event(request: web.Request) -> web.Response:
    ev = await request.app[IVR].put_event(await json_object(request))
    return web.json_response(ev.to_json())


async def event_status(request: web.Request) -> web.Response:
    ev = await request.app[IVR].set_event_status(request.match_info["event"],
                                                 await json_object(request))
    return web.json_response(ev.to_json())


async def delete_event(request: web.Request) -> web.Response:
    await request.app[IVR].delete_event(request.match_info["event"])
    return web.json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app[SCHEDULES_LOCK] = asyncio.Lock()
    r = Routes(app)
    r.get("/api/flows", flows_info, SUPERVISORS)
    r.post("/api/flows/reload", flows_reload, ADMIN_ONLY)
    r.get("/api/schedules/{service}", schedule_status, SUPERVISORS)
    r.post("/api/schedules/{service}/override", set_override, SUPERVISORS)
    r.get("/api/schedules/overrides/history", override_history, SUPERVISORS)
    # the event-information board (/api/events is the ACD's live WebSocket)
    r.get("/api/board", list_events, SUPERVISORS)
    r.get("/api/board/now", board_now, STAFF)
    r.post("/api/board/events", put_event, ADMIN_ONLY)
    r.post("/api/board/events/{event}/status", event_status, ADMIN_ONLY)
    r.post("/api/board/events/{event}/delete", delete_event, ADMIN_ONLY)
    # dated closures in schedules.yaml, and the TTS preview of an announcement
    r.get("/api/closures", admin_http.list_closures, SUPERVISORS)
    r.post("/api/closures", admin_http.add_closure_api, ADMIN_ONLY)
    r.post("/api/closures/delete", admin_http.delete_closure_api, ADMIN_ONLY)
    r.post("/api/tts/preview", admin_http.tts_preview, ADMIN_ONLY)
    r.get("/api/tts/{lang}/{key}", admin_http.tts_file, ADMIN_ONLY)
