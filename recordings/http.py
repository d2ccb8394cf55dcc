"""HTTP handlers for recordings: search, details, audio with Range (seek), browser-friendly
conversion, waveform peaks, the audit trail. Every access to a recording is audited.

Ids in URLs are digits only; file paths never come from the request, only from the index,
and are resolved under the archive folder (`safe_path`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from core.access import ADMIN_ONLY, READERS, Routes
from core.errors import json_error
from core.identity import Actor
from core.identity import actor_of as identity_actor
from store.models import AuditEntry, CallRecord, Recording

from . import schemas
from .audio import FORMATS, AudioUnavailable
from .errors import ConversionUnavailable, RecordingNotFound
from .files import RecordingFileError
from .service import RecordingService

RECORDINGS: web.AppKey[RecordingService] = web.AppKey("recordings", RecordingService)


def actor_of(request: web.Request) -> Actor:
    """The access check has passed: a console user, or the API token's holder."""
    return identity_actor(request)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id, "call_id": rec.call_id, "service": rec.service, "did": rec.did,
        "caller": rec.caller, "agent": rec.agent_id, "language": rec.language,
        "queue": rec.queue, "started_at": rec.started_at.isoformat(),
        "answered_at": _iso(rec.answered_at), "ended_at": rec.ended_at.isoformat(),
        "duration_s": rec.duration_s, "wait_s": rec.wait_s, "talk_s": rec.talk_s,
        "outcome": rec.outcome, "channels": rec.channels, "status": rec.status,
        "sha256": rec.sha256, "size_bytes": rec.size_bytes,
        "audio_url": f"/api/recordings/{rec.id}/audio",
        "peaks_url": f"/api/recordings/{rec.id}/peaks",
    }


def _call(call: CallRecord) -> dict[str, Any]:
    return {
        "id": call.id, "flow_path": [p for p in call.flow_path.split(",") if p],
        "offered_at": call.offered_at.isoformat(), "queued_at": _iso(call.queued_at),
        "ring_at": _iso(call.ring_at), "answered_at": _iso(call.answered_at),
        "ended_at": call.ended_at.isoformat(), "wait_s": call.wait_s, "talk_s": call.talk_s,
        "transfers": json.loads(call.transfers or "[]"), "outcome": call.outcome,
    }


async def list_recordings(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    q = schemas.search(request.query)
    rows, more = await service.search(q)
    await service.audit(actor_of(request), "search", detail=request.query_string)
    body: dict[str, Any] = {"items": [_row(r) for r in rows], "limit": q.limit,
                            "offset": q.offset}
    if more:
        body["next_offset"] = q.offset + q.limit  # present only when another page follows
    return web.json_response(body)


async def _recording(request: web.Request) -> Recording:
    rec = await request.app[RECORDINGS].get(schemas.recording_id(request.match_info["id"]))
    if rec is None:
        raise RecordingNotFound()
    return rec


async def recording_details(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    rec = await _recording(request)
    found = await service.details(rec.id)
    if found is None:
        raise RecordingNotFound()
    rec, call, agents = found
    await service.audit(actor_of(request), "view", rec)
    return web.json_response({**_row(rec), "agents": agents, "call": _call(call)})


async def recording_audio(request: web.Request) -> web.StreamResponse:
    """The archived WAV (two channels: caller left, operator right), or with ?format=mp3|ogg
    a cached conversion. aiohttp's FileResponse answers Range with 206 and Content-Range."""
    service = request.app[RECORDINGS]
    rec = await _recording(request)
    asked = schemas.audio(request.query)
    fmt, download = asked.format, asked.download
    try:
        path = service.path_of(rec)
    except RecordingFileError as exc:
        raise RecordingNotFound("recording file unavailable") from exc
    if not path.is_file():
        raise json_error(404, "file_missing", "recording file is missing")
    content_type = "audio/wav"
    if fmt != "wav":
        try:
            path = await service.converted(rec, fmt)
        except AudioUnavailable as exc:
            raise ConversionUnavailable(str(exc)) from exc
        content_type = FORMATS[fmt][3]
    action = "download" if download else "play"
    detail = f"format={fmt}" + (f" range={request.headers['Range']}"
                                if "Range" in request.headers else "")
    await service.audit(actor_of(request), action, rec, detail)
    headers = {"Content-Type": content_type, "Cache-Control": "private, no-store",
               "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="recording-{rec.id}.{fmt}"'
    return web.FileResponse(path, headers=headers)


async def recording_peaks(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    buckets = schemas.peaks_buckets(request.query)
    rec = await _recording(request)
    try:
        path = service.path_of(rec)
    except RecordingFileError as exc:
        raise RecordingNotFound("recording file unavailable") from exc
    if not path.is_file():
        raise json_error(404, "file_missing", "recording file is missing")
    body = await service.peaks(rec, buckets)
    await service.audit(actor_of(request), "waveform", rec, f"buckets={buckets}")
    return web.Response(body=body, content_type="application/json",
                        headers={"Cache-Control": "private, no-store"})


def _audit_row(a: AuditEntry) -> dict[str, Any]:
    return {"id": a.id, "at": a.at.isoformat(), "actor": a.actor, "user_id": a.user_id,
            "client": a.client, "action": a.action, "recording_id": a.recording_id,
            "call_id": a.call_id, "detail": a.detail}


async def audit_log(request: web.Request) -> web.Response:
    service = request.app[RECORDINGS]
    q = schemas.audit(request.query)
    rows = await service.audit_rows(q.recording, q.limit)
    return web.json_response({"items": [_audit_row(a) for a in rows]})


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    r.get("/api/recordings", list_recordings, READERS)
    r.get("/api/recordings/{id}", recording_details, READERS)
    r.get("/api/recordings/{id}/audio", recording_audio, READERS)
    r.get("/api/recordings/{id}/peaks", recording_peaks, READERS)
    r.get("/api/audit", audit_log, ADMIN_ONLY)
