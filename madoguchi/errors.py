"""HTTP errors as JSON with a stable error id."""

from __future__ import annotations

import json

from aiohttp import web


def json_error(status: int, error_id: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": error_id, "message": message})
    cls = web.HTTPException
    for c in (web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPNotFound,
              web.HTTPRequestRangeNotSatisfiable, web.HTTPServiceUnavailable):
        if c.status_code == status:
            cls = c
            break
    return cls(text=body, content_type="application/json")
