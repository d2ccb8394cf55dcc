"""Satisfaction on the city's 100-point scale (REQUIREMENTS §9: citizens ≥ 70 points, city
staff ≥ 80 points; "details to be agreed", so the agreed details are here).

A key of the post-call survey, 1 (poor) to 5 (very good), is worth (key − 1) ÷ 4 × 100
points: 1 → 0, 2 → 25, 3 → 50, 4 → 75, 5 → 100. A staff rating is given either the same
way (1-5) or directly in points (0-100). A score is the mean of the points (`score`); which
answers and ratings go into one is kpi/satisfaction.py.
"""

from __future__ import annotations

from collections.abc import Iterable

CITIZEN_TARGET = 70.0  # points, the citizens' survey score
STAFF_TARGET = 80.0  # points, the city staff's monthly ratings
KEYS = range(1, 6)  # a survey question's answers
LOW_KEYS = frozenset({1, 2})  # answers the monthly report lists by time and operator
SCALES = (5, 100)  # a staff rating: 1-5 like a survey key, or points 0-100


def points(key: int) -> float:
    """A 1-5 answer in points of 100."""
    if key not in KEYS:
        raise ValueError(f"an answer is 1 to 5, not {key}")
    return (key - 1) / 4 * 100


def rating_points(given: int, scale: int) -> float:
    """A staff rating in points: 1-5 mapped like a survey answer, or 0-100 as given."""
    if scale == 5:
        return points(given)
    if scale == 100 and 0 <= given <= 100:
        return float(given)
    raise ValueError(f"a rating is 1-5 or 0-100 points, not {given} of {scale}")


def score(values: Iterable[float]) -> float | None:
    """The mean of some points; None for none (never a made-up 0 or 100)."""
    items = list(values)
    return sum(items) / len(items) if items else None
