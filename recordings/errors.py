"""Errors of the recordings feature a client sees: each an ApiError."""

from __future__ import annotations

from core.errors import ApiError


class RecordingsError(ApiError):
    error_id = "recordings_error"


class RecordingNotFound(RecordingsError):
    status = 404
    error_id = "not_found"

    def __init__(self, what: str = "no such recording") -> None:
        super().__init__(what)


class ConversionUnavailable(RecordingsError):
    status = 503
    error_id = "conversion_unavailable"
