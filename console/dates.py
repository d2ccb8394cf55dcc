"""Dates and times as the console writes them: the city's clock (Asia/Tokyo), in Japanese form
(2026年12月2日 4:23) or English form (2 December 2026, 04:23). console.js writes the same forms
in the browser."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core.clock import CITY_TZ

MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")


def day_text(d: date, lang: str) -> str:
    if lang == "ja":
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d.day} {MONTHS_EN[d.month - 1]} {d.year}"


def time_text(t: datetime, lang: str) -> str:
    """An instant in the city's time (an aware datetime; a naive one is taken as UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    local = t.astimezone(CITY_TZ)
    if lang == "ja":
        return f"{day_text(local.date(), lang)} {local.hour}:{local.minute:02d}"
    return f"{day_text(local.date(), lang)}, {local.hour:02d}:{local.minute:02d}"
