"""Erlang C staffing through pyworkforce, checked against its published example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kpi.formulas import CallFacts
from kpi.staffing import plan, seats, service_level_with


def test_published_example_100_calls_aht_180_target_20() -> None:
    # pyworkforce's README: 100 calls in 30 min, AHT 3 min, 20 s target, 80 % SL, 85 % occupancy
    s = seats(100, 180, target_s=20, service_level=0.8, max_occupancy=0.85)
    assert s.positions == 14 and s.raw_positions == 14
    assert s.service_level == pytest.approx(0.888, abs=0.001)
    assert s.occupancy == pytest.approx(0.714, abs=0.001)


def test_city_target_needs_more_seats_than_20_s() -> None:
    s = seats(100, 180)  # 80 % within 9 s
    assert s.positions >= 14 and s.service_level is not None and s.service_level >= 0.8
    assert service_level_with(100, 180, s.positions - 1) is not None
    assert service_level_with(100, 180, s.positions - 1) < 0.8  # type: ignore[operator]
    assert seats(0, 180).positions == 0 and service_level_with(0, 180, 3) is None


def test_plan_averages_days_per_half_hour() -> None:
    day1 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # 09:00 Tokyo
    calls = [CallFacts("city", day1 + timedelta(days=d, minutes=m), "answered", True, 3, 120,
                       f"{d}-{m}") for d in (0, 1) for m in range(0, 30, 3)]  # 10 per day
    calls.append(CallFacts("city", day1, "ended_in_ivr", False, None, None, "ivr"))
    p = plan(calls)
    assert p["days"] == 2 and p["aht_s"] == 120.0
    assert list(p["slots"]) == ["09:00"]
    slot = p["slots"]["09:00"]
    assert slot["calls"] == 10 and slot["positions"] == seats(10, 120).positions
    assert p["peak_positions"] == slot["positions"]
