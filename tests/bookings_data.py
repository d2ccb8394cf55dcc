"""A catalogue for the bookings tests: one first-come event and one lottery event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bookings.schemas import BookingRequest, EventInput, event_input
from bookings.service import Channel, Who
from core.clock import CITY_TZ

NOW = datetime(2027, 4, 10, 12, 0, tzinfo=CITY_TZ)
WEB = Who("public", "192.0.2.1", Channel.WEB)
DESK = Who("operator1", "127.0.0.1", Channel.DESK)
IVR = Who("ivr", "asterisk", Channel.IVR)
ADMIN = Who("kanri", "127.0.0.1", Channel.DESK)


def event_data(event_id: str = "yoga", capacity: int = 10, **over: Any) -> dict[str, Any]:
    starts = NOW + timedelta(days=20)
    data: dict[str, Any] = {
        "id": event_id, "category": "kouza", "title_ja": "ヨガ教室", "title_en": "Yoga class",
        "fee_ja": "500円", "fee_en": "500 yen",
        "opens_at": (NOW - timedelta(days=5)).isoformat(),
        "closes_at": (NOW + timedelta(days=5)).isoformat(),
        "sessions": [{"starts_at": starts.isoformat(),
                      "ends_at": (starts + timedelta(hours=2)).isoformat(),
                      "venue_ja": "市民会館", "venue_en": "Civic hall", "capacity": capacity}]}
    data.update(over)
    return data


def event(event_id: str = "yoga", capacity: int = 10, **over: Any) -> EventInput:
    return event_input(event_data(event_id, capacity, **over))


def request(session_id: int, phone: str = "0312345678", party: int = 1,
            name: str = "山田 太郎", **over: Any) -> BookingRequest:
    data: dict[str, Any] = {"session_id": session_id, "name": name, "furigana": "やまだ たろう",
                            "phone": phone, "party": party, "note": "", "resident": True,
                            "age": None}
    data.update(over)
    return BookingRequest(**data)
