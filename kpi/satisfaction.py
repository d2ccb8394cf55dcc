"""Satisfaction scores (REQUIREMENTS §9: citizens ≥ 70 points, city staff ≥ 80 points, of
100), as pure functions over plain facts. Points per answer are core/satisfaction.py's.

- citizen satisfaction  the post-call survey. Each answered question is worth
  (市民満足度)            (key − 1) ÷ 4 × 100 points (1 → 0, 2 → 25, 3 → 50, 4 → 75, 5 → 100);
                        the score is the mean over every answered question of the group
                        (period, service or operator), so a call that answered two questions
                        counts twice. Unanswered questions (no key in time, or a wrong key
                        twice) are left out and counted. Answers belong to the period, service
                        and operator of their call (by the call's offer time, like the other
                        KPIs). None when nothing was answered.           target ≥ 70 points
- responses             calls with at least one answered question
- low answers           answers 1 and 2, listed in the monthly report by time and operator
- staff satisfaction    the city staff's monthly ratings (0-100, or 1-5 mapped like a survey
  (職員満足度)            key); the score is the mean of the ratings of the months in the
                        period, one rating per staff member and month. Centre-wide: it is
                        not split by service.                            target ≥ 80 points
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.satisfaction import CITIZEN_TARGET, KEYS, LOW_KEYS, STAFF_TARGET, points

from .formulas import BUCKETS

__all__ = ["CITIZEN_TARGET", "STAFF_TARGET", "AnswerFacts", "Citizen", "RatingFacts", "Staff",
           "citizen", "citizen_by", "low_answers", "staff"]


@dataclass(frozen=True)
class AnswerFacts:
    """One survey question of one call."""

    call_id: str
    service: str
    agent_id: str | None
    question: str
    position: int
    answer: int | None  # 1-5, None: unanswered
    offered_at: datetime  # the call's


@dataclass(frozen=True)
class RatingFacts:
    month: str
    points: float
    comment: str


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


@dataclass
class Citizen:
    """The citizens' score of one group of answers."""

    answered: int = 0
    unanswered: int = 0
    points_sum: float = 0.0
    distribution: dict[int, int] = field(default_factory=lambda: dict.fromkeys(KEYS, 0))
    calls: set[str] = field(default_factory=set)  # calls asked at least one question
    responding: set[str] = field(default_factory=set)  # calls that answered one or more

    def add(self, a: AnswerFacts) -> None:
        self.calls.add(a.call_id)
        if a.answer is None or a.answer not in KEYS:
            self.unanswered += 1
            return
        self.answered += 1
        self.points_sum += points(a.answer)
        self.distribution[a.answer] += 1
        self.responding.add(a.call_id)

    @property
    def score(self) -> float | None:
        return None if self.answered == 0 else self.points_sum / self.answered

    @property
    def met(self) -> bool | None:
        s = self.score
        return None if s is None else s >= CITIZEN_TARGET

    @property
    def low(self) -> int:
        return sum(self.distribution[k] for k in LOW_KEYS)

    def as_json(self) -> dict[str, Any]:
        return {"score": _r(self.score), "target": CITIZEN_TARGET, "met": self.met,
                "responses": len(self.responding), "surveyed": len(self.calls),
                "answers": self.answered, "unanswered": self.unanswered, "low": self.low,
                "distribution": {str(k): n for k, n in self.distribution.items()}}


def citizen(answers: Iterable[AnswerFacts]) -> Citizen:
    total = Citizen()
    for a in answers:
        total.add(a)
    return total


def citizen_by(answers: Iterable[AnswerFacts],
               key: Callable[[AnswerFacts], str | None]) -> dict[str, Citizen]:
    """Per group; answers whose key is None (an operator unknown) are left out."""
    groups: dict[str, Citizen] = {}
    for a in answers:
        k = key(a)
        if k is not None:
            groups.setdefault(k, Citizen()).add(a)
    return dict(sorted(groups.items()))


def by_period(by: str) -> Callable[[AnswerFacts], str]:
    """The KPIs' time buckets (formulas.BUCKETS), by the call's offer time."""
    bucket = BUCKETS[by]
    return lambda a: bucket(a.offered_at)


def low_answers(answers: Sequence[AnswerFacts]) -> list[AnswerFacts]:
    """Answers 1 and 2, oldest call first (a call's questions in order)."""
    return sorted((a for a in answers if a.answer in LOW_KEYS),
                  key=lambda a: (a.offered_at, a.call_id, a.position))


@dataclass
class Staff:
    """The city staff's score over some monthly ratings."""

    ratings: list[RatingFacts] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        if not self.ratings:
            return None
        return sum(r.points for r in self.ratings) / len(self.ratings)

    @property
    def met(self) -> bool | None:
        s = self.score
        return None if s is None else s >= STAFF_TARGET

    def as_json(self) -> dict[str, Any]:
        return {"score": _r(self.score), "target": STAFF_TARGET, "met": self.met,
                "ratings": len(self.ratings),
                "months": sorted({r.month for r in self.ratings})}


def staff(ratings: Iterable[RatingFacts]) -> Staff:
    return Staff(list(ratings))
