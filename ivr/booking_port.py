"""What the IVR's booking node needs of the bookings feature, stated here so the IVR never
imports it: the application provides this port (madoguchi/ports.py) over the bookings
service; `madoguchi flows simulate` uses a clearly labelled sample instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class OpenSession:
    """One date of an event open for booking, in the language asked for."""

    session_id: int
    title: str
    starts_at: datetime
    free: int  # seats left
    waiting_list: bool  # a full session still takes bookings, on its waiting list
    lottery: bool = False  # bookings are entries to a draw


class BookOutcome(StrEnum):
    CONFIRMED = "confirmed"
    WAITING = "waiting"  # on the waiting list
    APPLIED = "applied"  # entered in the lottery
    FULL = "full"
    CLOSED = "closed"  # outside the application window
    STOPPED = "stopped"  # the event board cancelled or postponed the event
    DUPLICATE = "duplicate"  # this phone has booked this date already
    NOT_ELIGIBLE = "not_eligible"  # residents only, an age range: not by phone
    REFUSED = "refused"  # anything else


@dataclass(frozen=True)
class BookResult:
    outcome: BookOutcome
    number: str | None = None  # the booking number, when booked


@dataclass(frozen=True)
class CallerBooking:
    """One of the caller's active bookings of a date yet to come."""

    number: str
    title: str
    starts_at: datetime
    status: str  # confirmed | waiting | applied


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    ALREADY = "already_cancelled"


class BookingPort(Protocol):
    async def open_sessions(self, category: str, language: str, limit: int
                            ) -> list[OpenSession]: ...

    async def book(self, session_id: int, phone: str, call_id: str) -> BookResult: ...

    async def bookings_of(self, phone: str, language: str, call_id: str, limit: int
                          ) -> list[CallerBooking]: ...

    async def cancel(self, number: str, phone: str, call_id: str) -> CancelOutcome: ...
