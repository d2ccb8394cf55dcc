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


class FormError(ConsoleError):
    """A console form refused: the page is shown again with this message and status."""

    status = 400
    error_id = "bad_form"
