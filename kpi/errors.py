"""Errors of the KPI package: each an ApiError with its status and error id."""

from __future__ import annotations

from core.errors import ApiError


class KpiError(ApiError):
    status = 400
    error_id = "kpi_error"


class InvalidRecord(KpiError):
    """An interaction record the city's classes or limits refuse."""

    status = 422
    error_id = "invalid_interaction"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CallUnknown(KpiError):
    status = 404
    error_id = "call_not_found"

    def __init__(self, call_id: str) -> None:
        super().__init__(f"no call {call_id!r}")


class DuplicateRecord(KpiError):
    status = 409
    error_id = "interaction_exists"

    def __init__(self, call_id: str) -> None:
        super().__init__(f"call {call_id} already has an interaction record")


class NotYourCall(KpiError):
    """An operator's record for a call another operator answered."""

    status = 403
    error_id = "not_your_call"


class BadQuery(KpiError):
    status = 400
    error_id = "bad_query"


class ReportFontMissing(KpiError):
    """The monthly report's Japanese font is not installed on this host."""

    status = 500
    error_id = "report_font_missing"
