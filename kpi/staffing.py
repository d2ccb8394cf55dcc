"""Seats needed per half-hour (Erlang C, pyworkforce) so that the quick-answer target holds:
80 % of calls answered within 9 s, from the volumes and handling times of past calls."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyworkforce.queuing import ErlangC

from core.calls import OFFERED_OUTCOMES
from core.clock import CITY_TZ, QUICK_ANSWER_S

from .formulas import TARGETS, CallFacts

INTERVAL_MIN = 30
DEFAULT_AHT_S = 180.0  # used only when the period has no answered call to measure


@dataclass(frozen=True)
class Staffing:
    calls: float  # offered per interval
    aht_s: float
    positions: int  # seats needed (after shrinkage)
    raw_positions: int  # agents on the phones
    service_level: float | None  # expected share answered within the target time
    occupancy: float | None

    def as_json(self) -> dict[str, Any]:
        return {"calls": round(self.calls, 2), "aht_s": round(self.aht_s, 1),
                "positions": self.positions, "raw_positions": self.raw_positions,
                "service_level": None if self.service_level is None
                else round(self.service_level, 4),
                "occupancy": None if self.occupancy is None else round(self.occupancy, 4)}


def seats(calls: float, aht_s: float, target_s: float = QUICK_ANSWER_S,
          service_level: float = TARGETS["quick_answer_rate"], interval_min: int = INTERVAL_MIN,
          max_occupancy: float = 1.0, shrinkage: float = 0.0) -> Staffing:
    """Erlang C for one interval. Times in seconds; pyworkforce takes any unit as long as
    AHT, target and interval share it, so everything is passed in minutes."""
    if calls <= 0:
        return Staffing(0.0, aht_s, 0, 0, None, None)
    erlang = ErlangC(transactions=calls, aht=aht_s / 60, asa=target_s / 60,
                     interval=interval_min, shrinkage=shrinkage)
    r = erlang.required_positions(service_level=service_level, max_occupancy=max_occupancy)
    return Staffing(calls, aht_s, int(r["positions"]), int(r["raw_positions"]),
                    float(r["service_level"]), float(r["occupancy"]))


def service_level_with(calls: float, aht_s: float, positions: int,
                       target_s: float = QUICK_ANSWER_S,
                       interval_min: int = INTERVAL_MIN) -> float | None:
    """Expected share answered within target_s with this many operators on the phones."""
    if calls <= 0 or positions <= 0:
        return None
    erlang = ErlangC(transactions=calls, aht=aht_s / 60, asa=target_s / 60,
                     interval=interval_min)
    return float(erlang.service_level(positions=positions))


def slot_of(facts: CallFacts) -> str:
    t = facts.offered_at.astimezone(CITY_TZ)
    return f"{t.hour:02d}:{30 if t.minute >= 30 else 0:02d}"


def plan(calls: Sequence[CallFacts], aht_s: float | None = None,
         max_occupancy: float = 1.0, shrinkage: float = 0.0) -> dict[str, Any]:
    """Seats per half-hour of the day from the average volume of the days that had calls.

    Offered calls count (answered or not): abandoned callers wanted an operator too."""
    offered = [c for c in calls if c.outcome in OFFERED_OUTCOMES]
    answered = [c for c in offered if c.answered]
    if aht_s is None:
        talk = [c.talk_s for c in answered if c.talk_s is not None]
        aht_s = sum(talk) / len(talk) if talk else DEFAULT_AHT_S
    days = {c.offered_at.astimezone(CITY_TZ).date() for c in offered}
    per_slot: dict[str, int] = defaultdict(int)
    for c in offered:
        per_slot[slot_of(c)] += 1
    slots = {slot: seats(n / len(days), aht_s, max_occupancy=max_occupancy,
                         shrinkage=shrinkage).as_json()
             for slot, n in sorted(per_slot.items())}
    return {"days": len(days), "aht_s": round(aht_s, 1), "target_s": QUICK_ANSWER_S,
            "service_level": TARGETS["quick_answer_rate"], "interval_min": INTERVAL_MIN,
            "slots": slots,
            "peak_positions": max((s["positions"] for s in slots.values()), default=0)}
