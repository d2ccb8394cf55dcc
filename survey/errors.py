"""Errors of the satisfaction feature a client sees: each an ApiError with its status and
error id."""

from __future__ import annotations

from core.errors import ApiError


class SurveyError(ApiError):
    status = 400
    error_id = "survey_error"


class CallNotFound(SurveyError):
    status = 404
    error_id = "call_not_found"

    def __init__(self, call_id: str) -> None:
        super().__init__(f"no live call {call_id[:40]!r}")


class NotConnected(SurveyError):
    """The survey starts when the operator hangs up: a call is marked while they talk."""

    status = 409
    error_id = "not_connected"

    def __init__(self) -> None:
        super().__init__("only a call connected to an operator can be marked for the survey")


class NotYourCall(SurveyError):
    status = 403
    error_id = "not_your_call"

    def __init__(self) -> None:
        super().__init__("an operator marks only the call they are talking on")


class MarkFailed(SurveyError):
    """Asterisk did not take the mark (AMI away, or the caller just left)."""

    status = 503
    error_id = "survey_mark_failed"


class InvalidRating(SurveyError):
    """A staff rating the API refuses; names the field."""

    status = 422
    error_id = "invalid_rating"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, extra={"field": field})


class BadQuery(SurveyError):
    status = 400
    error_id = "bad_query"
