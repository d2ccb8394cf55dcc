"""Errors of the FAX feature a client sees: each an ApiError."""

from __future__ import annotations

from core.errors import ApiError


class FaxError(ApiError):
    error_id = "fax_error"


class FaxNotFound(FaxError):
    status = 404
    error_id = "not_found"

    def __init__(self, what: str = "no such FAX") -> None:
        super().__init__(what)


class FaxFileMissing(FaxError):
    status = 404
    error_id = "file_missing"

    def __init__(self, what: str = "this FAX has no PDF") -> None:
        super().__init__(what)


class TransitionRefused(FaxError):
    status = 409
    error_id = "transition_refused"


class NotAPdf(FaxError):
    status = 400
    error_id = "not_pdf"


class UploadTooLarge(FaxError):
    status = 413
    error_id = "too_large"


class NumberRefused(FaxError):
    status = 422
    error_id = "number_refused"


class BadUpload(FaxError):
    status = 400
    error_id = "bad_upload"


class SendUnavailable(FaxError):
    status = 503
    error_id = "fax_unavailable"
