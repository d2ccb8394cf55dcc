"""The bookings `madoguchi flows simulate` talks to: a fixed, clearly labelled sample (the
simulator reads the flow set only, never the engine's database), so a dry run walks every
branch of a booking node — two dates to choose from, one booking of the caller's to cancel —
without booking anything."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .booking_port import BookOutcome, BookResult, CallerBooking, CancelOutcome, OpenSession

SAMPLE_NUMBER = "SAMP23456"  # said back after a simulated booking; no real number looks so
_TITLES = {"ja": ("【模擬】ヨガ教室", "【模擬】料理教室"),
           "en": ("[simulated] Yoga class", "[simulated] Cooking class")}


class SampleBookings:
    """Answers like the bookings service would, from fixed data relative to `at`."""

    LABEL = "bookings: simulated sample (no database is read or written)"

    def __init__(self, at: datetime, tz: ZoneInfo) -> None:
        day = at.astimezone(tz).date() + timedelta(days=7)
        self._starts = (datetime.combine(day, time(10, 0), tz),
                        datetime.combine(day + timedelta(days=1), time(14, 30), tz))
        self.calls: list[str] = []  # what was asked, for the output

    def _titles(self, language: str) -> tuple[str, str]:
        return _TITLES.get(language, _TITLES["en"])

    async def open_sessions(self, category: str, language: str, limit: int
                            ) -> list[OpenSession]:
        self.calls.append(f"open_sessions({category})")
        titles = self._titles(language)
        return [OpenSession(1, titles[0], self._starts[0], 8, True),
                OpenSession(2, titles[1], self._starts[1], 0, True)][:limit]

    async def book(self, session_id: int, phone: str, call_id: str) -> BookResult:
        self.calls.append(f"book(session {session_id}, phone {phone})")
        outcome = BookOutcome.CONFIRMED if session_id == 1 else BookOutcome.WAITING
        return BookResult(outcome, SAMPLE_NUMBER)

    async def bookings_of(self, phone: str, language: str, call_id: str, limit: int
                          ) -> list[CallerBooking]:
        self.calls.append(f"bookings_of(phone {phone})")
        return [CallerBooking(SAMPLE_NUMBER, self._titles(language)[0], self._starts[0],
                              "confirmed")][:limit]

    async def cancel(self, number: str, phone: str, call_id: str) -> CancelOutcome:
        self.calls.append(f"cancel({number}, phone {phone})")
        return CancelOutcome.CANCELLED
