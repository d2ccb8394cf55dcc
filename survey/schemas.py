"""What clients send about satisfaction, checked and turned into typed values: a staff
rating (422 naming the field) and the month of a query (400)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.clock import CITY_TZ

from .errors import BadQuery, InvalidRating

MAX_COMMENT = 2000
_MONTH = re.compile(r"(?P<y>[0-9]{4})-(?P<m>0[1-9]|1[0-2])")  # ASCII digits only
FIELDS = ("month", "points", "rating", "comment")


@dataclass(frozen=True)
class NewRating:
    month: str  # YYYY-MM
    given: int  # as given, on its scale
    scale: int  # 100 (points 0-100) or 5 (rating 1-5)
    comment: str


def this_month(now: datetime) -> str:
    return now.astimezone(CITY_TZ).strftime("%Y-%m")


def month(raw: str | None, now: datetime) -> str:
    """A query's month (YYYY-MM); the city's current month when none is given."""
    if not raw:
        return this_month(now)
    if not _MONTH.fullmatch(raw):
        raise BadQuery(f"month must be YYYY-MM, not {raw[:16]!r}")
    return raw


def _whole(data: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRating(key, f"{key} must be a whole number from {lo} to {hi}")
    return value


def rating(data: Mapping[str, Any], now: datetime) -> NewRating:
    """POST /api/staff-satisfaction: {month, points 0-100 | rating 1-5, comment}. The month
    may be this one or an earlier one, never a month still to come."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidRating(unknown[0], f"unknown field(s): {', '.join(unknown)[:200]} "
                            f"(known: {', '.join(FIELDS)})")
    raw_month = data.get("month")
    if not isinstance(raw_month, str) or not _MONTH.fullmatch(raw_month):
        raise InvalidRating("month", "month must be YYYY-MM")
    if raw_month > this_month(now):
        raise InvalidRating("month", f"month {raw_month} has not begun")
    if ("points" in data) == ("rating" in data):
        raise InvalidRating("points", "give either points (0-100) or rating (1-5)")
    if "points" in data:
        given, scale = _whole(data, "points", 0, 100), 100
    else:
        given, scale = _whole(data, "rating", 1, 5), 5
    comment = data.get("comment", "")
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidRating("comment", f"comment must be text of at most {MAX_COMMENT} "
                            "characters")
    return NewRating(raw_month, given, scale, comment.strip())
