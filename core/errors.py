"""Errors a client sees (ApiError, JSON with a stable error id) and the checks of request
input that raise them."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web


class ApiError(Exception):
    """The one root of errors a client sees: an HTTP status, a stable error id and a message,
    turned into {"error": id, "message": text} by the application's one middleware. Each
    feature's errors module subclasses it (its own root, then one class per refusal)."""

    status = 400
    error_id = "bad_request"

    def __init__(self, message: str, *, status: int | None = None,
                 error_id: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_id is not None:
            self.error_id = error_id
        if not 400 <= self.status <= 599:
            raise ValueError(f"an API error needs a 4xx or 5xx status, not {self.status}")
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.error_id, "message": self.message, **self.extra}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The application's outermost middleware: every ApiError, from any feature or the
    access check, answers as JSON {"error": id, "message": text} with its status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status)


def json_error(status: int, error_id: str, message: str) -> ApiError:
    """An ApiError for a refusal that has no class of its own."""
    return ApiError(message, status=status, error_id=error_id)


JSON_LIMIT = 64 * 1024  # every JSON or form body; only the CSV import may be larger
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def ascii_digits(raw: str) -> bool:
    """Only 0-9: str.isdigit() and int() also take '²', '１２' or Arabic-Indic digits, which
    int() then refuses (a 500) or which reach a dial string."""
    return _DIGITS.fullmatch(raw) is not None


def ascii_decimal(raw: str) -> bool:
    """A plain decimal number (ASCII digits, an optional fraction): float() would also take
    '１２', '1_0', 'nan', 'inf' or '1e308'."""
    return _DECIMAL.fullmatch(raw) is not None and len(raw) <= 32


def int_param(raw: str, name: str, lo: int, hi: int) -> int:
    """A whole number lo..hi written in ASCII digits, or a 400 naming the parameter."""
    if not ascii_digits(raw) or len(raw) > 18 or not lo <= int(raw) <= hi:
        raise json_error(400, "bad_parameter", f"{name} must be a whole number {lo}..{hi}")
    return int(raw)


def decimal_param(raw: str, name: str) -> float:
    """A plain decimal number (see ascii_decimal), or a 400 naming the parameter."""
    if not ascii_decimal(raw):
        raise json_error(400, "bad_parameter", f"{name} must be a decimal number like 2.5")
    return float(raw)


def _has_nul(value: Any) -> bool:
    todo = [value]  # a loop, not recursion: nesting depth is the sender's choice
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


async def json_object(request: web.Request, limit: int = JSON_LIMIT) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx saying why not: 413 over `limit` bytes,
    400 for anything but a UTF-8 JSON object, or a string holding a NUL (PostgreSQL refuses
    NUL in text, so it would come back as a 500)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    raw = await request.read()
    if len(raw) > limit:  # a chunked body announces no length
        raise too_large(limit)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise json_error(400, "bad_json", "the body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise json_error(400, "bad_json", "the body must be a JSON object")
    if _has_nul(data):
        raise json_error(400, "bad_json", "strings in the body must not contain NUL (\\u0000)")
    return data


def too_large(limit: int) -> ApiError:
    return json_error(413, "too_large", f"the request body is over {_size(limit)}")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n // 1024} KiB"
