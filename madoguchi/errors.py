"""HTTP errors as JSON with a stable error id."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

_BY_STATUS: dict[int, type[web.HTTPException]] = {
    c.status_code: c for c in (
        web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPNotFound,
        web.HTTPMethodNotAllowed, web.HTTPConflict, web.HTTPRequestEntityTooLarge,
        web.HTTPRequestRangeNotSatisfiable, web.HTTPUnprocessableEntity,
        web.HTTPTooManyRequests, web.HTTPInternalServerError, web.HTTPServiceUnavailable)
}


def json_error(status: int, error_id: str, message: str) -> web.HTTPException:
    """An aiohttp exception carrying {"error": id, "message": text}; unknown codes are a bug."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        raise ValueError(f"no HTTP error class for status {status}")
    return cls(text=json.dumps({"error": error_id, "message": message}),
               content_type="application/json")


async def json_object(request: web.Request, limit: int = 64 * 1024) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying why not."""
    if request.content_length and request.content_length > limit:
        raise json_error(400, "too_large", f"request body over {limit // 1024} KiB")
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise json_error(400, "bad_json", "the body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise json_error(400, "bad_json", "the body must be a JSON object")
    return data
