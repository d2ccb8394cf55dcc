"""Errors of bookings a client sees: each an ApiError with its status and error id; the
public page shows the message (Japanese, then English)."""

from __future__ import annotations

from typing import ClassVar

from core.errors import ApiError


class BookingError(ApiError):
    status = 400
    error_id = "booking_error"


class InvalidField(BookingError):
    """A field the API refuses; names it."""

    status = 400
    error_id = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, extra={"field": field})


class EventNotFound(BookingError):
    status = 404
    error_id = "event_not_found"

    def __init__(self) -> None:
        super().__init__("この催しは見つかりません / no such event")


class SessionNotFound(BookingError):
    status = 404
    error_id = "session_not_found"

    def __init__(self) -> None:
        super().__init__("この日程は見つかりません / no such session")


class BookingNotFound(BookingError):
    """An unknown number, a number with another phone, or a number that fails its check:
    one answer for all, so the page tells nobody whose number exists."""

    status = 404
    error_id = "booking_not_found"

    def __init__(self) -> None:
        super().__init__("申込番号と電話番号に合う申込がありません / "
                         "no booking matches this number and phone")


class WindowClosed(BookingError):
    status = 409
    error_id = "window_closed"

    def __init__(self, not_yet: bool) -> None:
        super().__init__("申込受付はまだ始まっていません / applications are not open yet"
                         if not_yet else
                         "申込受付は終了しました / applications are closed")


class SessionFull(BookingError):
    status = 409
    error_id = "session_full"

    def __init__(self) -> None:
        super().__init__("定員に達しました / this session is full")


class Duplicate(BookingError):
    status = 409
    error_id = "duplicate_booking"

    def __init__(self) -> None:
        super().__init__("この電話番号で既に申し込まれています / "
                         "this phone number has already booked this session")


class NotEligible(BookingError):
    status = 409
    error_id = "not_eligible"
    _TEXTS: ClassVar[dict[str, str]] = {
        "residents_only": "市内在住の方のみ申し込めます / city residents only",
        "age_required": "年齢を入力してください / please give your age",
        "too_young": "対象年齢に達していません / below the age range",
        "too_old": "対象年齢を超えています / above the age range",
    }

    def __init__(self, reason: str) -> None:
        super().__init__(self._TEXTS.get(reason, reason), extra={"reason": reason})


class EventStopped(BookingError):
    """The IVR's event board says the event is cancelled or postponed."""

    status = 409
    error_id = "event_stopped"

    def __init__(self, status: str) -> None:
        super().__init__(f"この催しは受付を停止しています（{status}） / "
                         f"bookings are stopped: {status}", extra={"board_status": status})


class AlreadyCancelled(BookingError):
    status = 409
    error_id = "already_cancelled"

    def __init__(self) -> None:
        super().__init__("この申込は取り消し済みです / this booking is already cancelled")


class DrawRefused(BookingError):
    status = 409
    error_id = "draw_refused"


class CatalogueConflict(BookingError):
    status = 409
    error_id = "catalogue_conflict"


class ImportRejected(BookingError):
    """A catalogue CSV with bad lines: nothing imported; every bad line named."""

    status = 422
    error_id = "import_rejected"

    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__(f"{len(errors)} line(s) refused; nothing imported",
                         extra={"errors": errors})


class CsrfRefused(BookingError):
    status = 403
    error_id = "csrf"

    def __init__(self) -> None:
        super().__init__("ページを読み込み直してから送信してください / "
                         "reload the page and send again (form token missing or stale)")


class RateLimited(BookingError):
    status = 429
    error_id = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"送信が多すぎます。{retry_after}秒後にお試しください / "
                         f"too many requests; try again in {retry_after} s",
                         extra={"retry_after": retry_after})
        self.retry_after = retry_after
