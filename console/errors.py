"""Errors of the console a client sees: each an ApiError."""

from __future__ import annotations

from core.errors import ApiError


class ConsoleError(ApiError):
    error_id = "console_error"


class Unauthorized(ConsoleError):
    status = 401
    error_id = "unauthorized"


class Forbidden(ConsoleError):
    status = 403
    error_id = "forbidden"
