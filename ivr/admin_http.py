"""The IVR's admin routes: dated closures (holidays) written into config/schedules.yaml, and
a preview of an event's announcement with the IVR's own TTS."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from aiohttp import web

from core.errors import json_error, json_object
from core.yamlconf import ConfigError, read_config_text

from . import schemas
from .appkeys import IVR, SCHEDULES_LOCK
from .closures import (
    ClosureError,
    add_closure,
    remove_closure,
    write_atomically,
)
from .events import announcement_text

# ---- dated closures (holidays) in config/schedules.yaml -------------------------------------


def _closures(request: web.Request) -> list[dict[str, Any]]:
    sched = request.app[IVR].current.schedules
    items = [{"date": d.isoformat(), "name": n, "services": []}
             for d, n in sched.dated_closures.items()]
    items += [{"date": date(c.year, *c.start).isoformat(), "name": c.name,
               "services": list(c.services)} for c in sched.closures if c.year is not None]
    return sorted(items, key=lambda i: (i["date"], i["services"]))


async def list_closures(request: web.Request) -> web.Response:
    return web.json_response({"items": _closures(request)})


async def _rewrite_schedules(request: web.Request, change: Any) -> web.Response:
    """Write schedules.yaml atomically, reload like a flows reload; on refusal put the old
    text back (the old flow set never stopped serving) and answer with file:line."""
    ivr = request.app[IVR]
    path = ivr.sources.config_dir / "schedules.yaml"
    async with request.app[SCHEDULES_LOCK]:
        try:
            # strict UTF-8 as the loader reads it; a bad byte put there by hand is named
            old = await asyncio.to_thread(read_config_text, path)
        except ConfigError as exc:
            return web.json_response({
                "error": "invalid_schedules", "message": "schedules.yaml on disk cannot be "
                "read; it is unchanged", "errors": [str(exc)]}, status=422)
        try:
            new = change(old, path)
        except ClosureError as exc:
            raise json_error(400, "invalid", str(exc)) from exc
        await asyncio.to_thread(write_atomically, path, new)
        try:
            result = await ivr.reload()
        except BaseException:
            await asyncio.to_thread(write_atomically, path, old)
            raise
        if not result.ok:
            await asyncio.to_thread(write_atomically, path, old)
            return web.json_response({
                "error": "invalid_schedules", "message": "refused: schedules.yaml is "
                "unchanged and the current hours keep serving", "errors": result.errors},
                status=422)
    return web.json_response({"ok": True, "version": result.version,
                              "items": _closures(request)})


async def add_closure_api(request: web.Request) -> web.Response:
    closure = schemas.new_closure(await json_object(request, limit=16 * 1024),
                                  request.app[IVR].current.entry)
    day = closure.day.isoformat()
    for item in _closures(request):  # one closure a day per service
        if item["date"] == day and (not item["services"] or not closure.services
                                    or closure.services[0] in item["services"]):
            raise json_error(409, "exists", f"{day} is already a closure ({item['name']})")
    return await _rewrite_schedules(request, lambda old, _path: add_closure(old, closure))


async def delete_closure_api(request: web.Request) -> web.Response:
    services = sorted(request.app[IVR].current.entry)
    gone = schemas.closure_removal(await json_object(request, limit=16 * 1024), services)
    return await _rewrite_schedules(
        request, lambda old, path: remove_closure(old, path, gone.day, gone.service, services))


# ---- TTS preview of an event announcement ---------------------------------------------------


async def tts_preview(request: web.Request) -> web.Response:
    """Render the announcement of an event as edited (not saved) with the IVR's own TTS and
    cache; the text reaches the synthesiser as argv or a file, never through a shell."""
    ivr = request.app[IVR]
    statuses = ivr.current.board.statuses
    asked = schemas.tts_preview(await json_object(request, limit=16 * 1024), statuses,
                                ivr.current.schedules.tz)
    lang, event = asked.lang, asked.event
    text = announcement_text(event, statuses[event.status], lang)
    key = await asyncio.to_thread(ivr.tts.render, text, lang)
    if key is None:
        raise json_error(503, "no_tts", f"no text-to-speech for {lang} on this server")
    return web.json_response({"lang": lang, "text": text, "audio_url": f"/api/tts/{key}"})


async def tts_file(request: web.Request) -> web.StreamResponse:
    name = schemas.tts_file_name(request.match_info["lang"], request.match_info["key"])
    path = request.app[IVR].tts.root / name
    if not path.is_file():
        raise json_error(404, "not_found", "no such rendered announcement")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": "no-store"})
