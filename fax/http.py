"""HTTP handlers for FAX: the inbox (search, details, the PDF inline or as a download,
status, the interaction record) and sending (upload a PDF to an allowed number, follow the
job). Every access is audited; ids in URLs are our 32-hex ids only; files are found from
the index, never from the request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from core.access import ANYONE, STAFF, Routes
from core.errors import json_object
from core.identity import actor_of

from . import schemas
from .errors import BadUpload, UploadTooLarge
from .models import FaxReceived, FaxSent
from .sending import Outbox
from .service import FaxService, interaction_json, received_json, sent_json
from .textpdf import TextPdfError, text_pdf

FAX: web.AppKey[FaxService] = web.AppKey("fax", FaxService)
OUTBOX: web.AppKey[Outbox] = web.AppKey("fax_outbox", Outbox)
SEND_ROUTE = ("POST", "/api/fax/send")  # the one FAX route taking a large body
FORM_OVERHEAD = 64 * 1024  # the number field and the multipart framing around the file
MAX_NUMBER_FIELD = 64


def _pdf_response(request: web.Request, path: Path, name: str) -> web.FileResponse:
    download = request.query.get("download") in ("1", "true")
    disposition = "attachment" if download else "inline"
    return web.FileResponse(path, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": f'{disposition}; filename="{name}.pdf"',
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN"})


def _page(body: dict[str, Any], more: bool, limit: int, offset: int) -> dict[str, Any]:
    body.update(limit=limit, offset=offset)
    if more:
        body["next_offset"] = offset + limit  # present only when another page follows
    return body


async def list_fax(request: web.Request) -> web.Response:
    service = request.app[FAX]
    q = schemas.search(request.query)
    rows, more = await service.search(q)
    await service.audit(actor_of(request), "fax_search", detail=request.query_string)
    return web.json_response(_page({"items": [received_json(r) for r in rows]}, more,
                                   q.limit, q.offset))


async def _received(request: web.Request) -> FaxReceived:
    return await request.app[FAX].get(schemas.fax_id(request.match_info["id"]))


async def fax_details(request: web.Request) -> web.Response:
    service = request.app[FAX]
    row = await _received(request)
    record = await service.interaction(row.id)
    await service.audit(actor_of(request), "fax_view", row.id)
    return web.json_response({**received_json(row), "interaction":
                              interaction_json(record) if record else None})


async def fax_pdf(request: web.Request) -> web.StreamResponse:
    service = request.app[FAX]
    row = await _received(request)
    path = service.pdf_of(row)
    download = request.query.get("download") in ("1", "true")
    await service.audit(actor_of(request), "fax_download" if download else "fax_read", row.id,
                        f"sha256={row.sha256}")
    return _pdf_response(request, path, f"fax-{row.id}")


async def fax_status(request: web.Request) -> web.Response:
    service = request.app[FAX]
    fax_id = schemas.fax_id(request.match_info["id"])
    new = schemas.status(await json_object(request))
    row = await service.set_status(fax_id, new, actor_of(request))
    return web.json_response(received_json(row))


async def fax_interaction(request: web.Request) -> web.Response:
    service = request.app[FAX]
    fax_id = schemas.fax_id(request.match_info["id"])
    new = schemas.interaction(await json_object(request))
    row = await service.add_interaction(fax_id, new, actor_of(request))
    return web.json_response(interaction_json(row), status=201)


async def _upload(request: web.Request, limit: int) -> tuple[bytes, str]:
    """The multipart form's `file` (read up to `limit`) and `number`."""
    if request.content_type != "multipart/form-data":
        raise BadUpload("send a multipart/form-data form with a PDF `file` and a `number`")
    data: bytes | None = None
    number: str | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadUpload("nested multipart forms are not taken")
            if part.name == "number":
                raw = await part.read()
                if len(raw) > MAX_NUMBER_FIELD:
                    raise BadUpload("the number is too long")
                number = raw.decode("utf-8", errors="replace")
            elif part.name == "file":
                buf = bytearray()
                while chunk := await part.read_chunk(64 * 1024):
                    buf += chunk
                    if len(buf) > limit:
                        raise UploadTooLarge(f"the PDF is over {limit // (1024 * 1024)} MiB")
                data = bytes(buf)
            else:
                await part.release()
    except (ValueError, AssertionError) as exc:  # a malformed form
        raise BadUpload("the form could not be read") from exc
    if data is None or number is None:
        raise BadUpload("the form needs a PDF `file` and a `number`")
    return data, number


async def send_fax(request: web.Request) -> web.Response:
    outbox = request.app[OUTBOX]
    data, number = await _upload(request, outbox.service.config.fax.max_upload_bytes)
    row = await outbox.submit(data, number, actor_of(request))
    return web.json_response(sent_json(row), status=202)


async def send_text(request: web.Request) -> web.Response:
    """An answer text (an FAQ's, or written by the operator) rendered to PDF and sent."""
    outbox = request.app[OUTBOX]
    text, heading, number = schemas.text_fax(await json_object(request))
    outbox.check_number(number)  # refused before anything is rendered
    try:
        data = await asyncio.to_thread(text_pdf, text, heading)
    except TextPdfError as exc:
        raise BadUpload(str(exc)) from exc
    row = await outbox.submit(data, number, actor_of(request))
    return web.json_response(sent_json(row), status=202)


async def list_sent(request: web.Request) -> web.Response:
    service = request.app[FAX]
    limit, offset = schemas.page(request.query)
    rows, more = await service.sent_list(limit, offset)
    await service.audit(actor_of(request), "fax_sent_search", detail=request.query_string)
    return web.json_response(_page({"items": [sent_json(r) for r in rows]}, more, limit,
                                   offset))


async def _sent(request: web.Request) -> FaxSent:
    return await request.app[FAX].sent(schemas.fax_id(request.match_info["id"]))


async def sent_details(request: web.Request) -> web.Response:
    service = request.app[FAX]
    row = await _sent(request)
    await service.audit(actor_of(request), "fax_sent_view", row.id)
    return web.json_response(sent_json(row))


async def sent_pdf(request: web.Request) -> web.StreamResponse:
    service = request.app[FAX]
    row = await _sent(request)
    path = service.pdf_of(row)
    download = request.query.get("download") in ("1", "true")
    await service.audit(actor_of(request), "fax_sent_download" if download else
                        "fax_sent_read", row.id, f"sha256={row.sha256}")
    return _pdf_response(request, path, f"fax-sent-{row.id}")


def body_limit(service: FaxService) -> int:
    """The largest request the send route takes: the PDF and its form around it."""
    return service.config.fax.max_upload_bytes + FORM_OVERHEAD


def add_routes(app: web.Application) -> None:
    r = Routes(app)
    # operators and supervisors handle FAXes; the city's viewers search and read them
    r.get("/api/fax", list_fax, ANYONE)
    r.post("/api/fax/send", send_fax, STAFF)
    r.post("/api/fax/send-text", send_text, STAFF)
    r.get("/api/fax/sent", list_sent, ANYONE)
    r.get("/api/fax/sent/{id}", sent_details, ANYONE)
    r.get("/api/fax/sent/{id}/pdf", sent_pdf, ANYONE)
    r.get("/api/fax/{id}", fax_details, ANYONE)
    r.get("/api/fax/{id}/pdf", fax_pdf, ANYONE)
    r.post("/api/fax/{id}/status", fax_status, STAFF)
    r.post("/api/fax/{id}/interaction", fax_interaction, STAFF)
