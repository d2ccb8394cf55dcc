"""HTTP handlers for recordings: search, and audio streaming with Range (seek)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from madoguchi.errors import json_error
from store.models import CallRecord, Recording

from .files import RecordingFileError
from .service import RecordingQuery, RecordingService

RECORDINGS: web.AppKey[RecordingService] = web.AppKey("recordings", RecordingService)


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise json_error(400, "bad_time", f"{name} must be an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise json_error(400, "bad_time", f"{name} must include a time zone offset")
    return value


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise json_error(400, "bad_parameter", f"{name} must be an integer {lo}..{hi}")
    return int(raw)


def _row(rec: Recording, call: CallRecord) -> dict[str, Any]:
    return {
        "id": rec.id, "call_id": rec.call_id, "service": rec.service, "did": call.did,
        "caller": rec.caller, "agent": rec.agent_id, "language": call.language,
        "started_at": rec.started_at.isoformat(),
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": rec.ended_at.isoformat(), "duration_s": rec.duration_s,
        "outcome": call.outcome, "sha256": rec.sha256, "size_bytes": rec.size_bytes,
        "audio_url": f"/api/recordings/{rec.id}/audio",
    }


async def list_recordings(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    caller = request.query.get("caller")
    if caller is not None and not caller.replace("+", "").isdigit():
        raise json_error(400, "bad_parameter", "caller must be digits")
    q = RecordingQuery(start=_time(request, "from"), end=_time(request, "to"),
                       agent=request.query.get("agent") or None, caller=caller or None,
                       service=request.query.get("service") or None,
                       limit=_int(request, "limit", 100, 1, 1000),
                       offset=_int(request, "offset", 0, 0, 10_000_000))
    rows = await service.search(q)
    return web.json_response({"items": [_row(r, c) for r, c in rows], "limit": q.limit,
                              "offset": q.offset})


async def recording_audio(request: web.Request) -> web.StreamResponse:
    service = request.app[RECORDINGS]
    raw_id = request.match_info["id"]
    if not raw_id.isdigit():
        raise json_error(404, "not_found", "no such recording")
    rec = await service.get(int(raw_id))
    if rec is None:
        raise json_error(404, "not_found", "no such recording")
    try:
        path = service.path_of(rec)
    except RecordingFileError as exc:
        raise json_error(404, "not_found", "recording file unavailable") from exc
    if not path.is_file():
        raise json_error(404, "file_missing", "recording file is missing")
    # FileResponse implements Range/If-Range and sends 206 with Content-Range
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": "private, no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{id}/audio", recording_audio)
