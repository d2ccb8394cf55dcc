"""The city's clock: its time zone, UTC now, and the quick-answer threshold of its KPIs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

# the city's day, whatever the server's zone: archive folders, reports, KPIs by day
CITY_TZ_NAME = "Asia/Tokyo"
CITY_TZ = ZoneInfo(CITY_TZ_NAME)
QUICK_ANSWER_S = 9.0  # 3 rings: the quick-answer threshold of REQUIREMENTS §9


def now_utc() -> datetime:
    return datetime.now(UTC)


def city_day(at: datetime) -> date:
    """The city's calendar day of an aware instant."""
    return at.astimezone(CITY_TZ).date()
