"""The city's service-level KPIs (REQUIREMENTS §9), as pure functions over plain facts.

Formulas (each a ratio; None when the denominator is zero, never a made-up 0 or 100 %):

- offered            calls that asked for an operator: they reached the waiting line
                     (answered, abandoned while waiting or ringing, overflowed, left the line
                     for a callback). Calls that ended in the IVR (closed hours, self-service,
                     hung up in the menu) were never offered to an operator. The center's
                     own callback calls (outcome "callback") are never offered nor answered.
- answer rate        answered ÷ offered                                        target ≥ 80 %
                     a caller who booked a callback is offered and not answered live
- quick-answer rate  answered within 9 s (3 rings) ÷ answered                  target ≥ 80 %
                     the clock starts at the waiting line (Call.time_to_answer); ≤ 9.0 s counts
- first-contact      (完了 + 一部完了 + 転送F) ÷ (answered − その他)              target ≥ 50 %
  resolution (FCR)   その他 holds every excluded kind: calls from city staff, sales, wrong
                     numbers, one-ring hang-ups. Not resolved: 取次, 転送. An answered call
                     without an interaction record stays in the denominator (unresolved), so a
                     missing record can only lower the figure; the count is reported.
- abandon rate       (abandoned − short abandons) ÷ (offered − short abandons); a short abandon
                     hung up within `short_abandon_s` of reaching the waiting line
- ASA                Σ wait of answered calls ÷ answered (seconds)
- AHT                (Σ talk + Σ after-call work) ÷ answered (seconds)
- occupancy          (time on calls + ringing + after-call work) ÷ (that + time available),
                     from the operators' state history; time away or logged out is not staffed

Callbacks (shown beside the answer rate, no target), over the callbacks the period's calls
booked: done (the citizen answered a callback: its call record, linked by callback_of),
failed (every attempt unanswered), expired (the service closed first), pending (still
waiting or being dialled); the mean time from the request to the citizen's answer; and
- answer rate including callbacks   (answered + callbacks done) ÷ offered
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.calls import OFFERED_OUTCOMES, Outcome
from core.clock import CITY_TZ, QUICK_ANSWER_S
from core.interactions import OutcomeClass

DEFAULT_SHORT_ABANDON_S = 5.0
TARGETS: Mapping[str, float] = {"answer_rate": 0.80, "quick_answer_rate": 0.80, "fcr": 0.50}

RESOLVED = frozenset({OutcomeClass.COMPLETE, OutcomeClass.PARTIAL, OutcomeClass.TRANSFER_FAQ})


@dataclass(frozen=True)
class CallFacts:
    """What the KPIs need from one call record."""

    service: str
    offered_at: datetime
    outcome: str
    answered: bool
    wait_s: float | None  # waiting line → answer (or → hang-up when not answered)
    talk_s: float | None
    call_id: str = ""


@dataclass(frozen=True)
class InteractionFacts:
    call_id: str
    outcome_class: OutcomeClass


@dataclass(frozen=True)
class StateSpan:
    """An operator's time in one state (from the state history), already cut to the period."""

    agent_id: str
    state: str
    at: datetime  # start; a span counts in the group of its start
    seconds: float


def ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else num / den


def answer_rate(answered: int, offered: int) -> float | None:
    return ratio(answered, offered)


def quick_answer_rate(quick: int, answered: int) -> float | None:
    return ratio(quick, answered)


def fcr(resolved: int, answered: int, excluded: int) -> float | None:
    """First-contact resolution: resolved ÷ (answered − city staff − other)."""
    return ratio(resolved, answered - excluded)


def abandon_rate(abandoned: int, short: int, offered: int) -> float | None:
    return ratio(abandoned - short, offered - short)


def is_quick(wait_s: float | None) -> bool:
    """Answered within 3 rings. An answered call that never waited (no waiting line) is quick."""
    return wait_s is None or wait_s <= QUICK_ANSWER_S


@dataclass
class Kpi:
    """Counts and the KPIs derived from them for one group of calls."""

    offered: int = 0
    answered: int = 0
    quick: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflow: int = 0
    callback_requested: int = 0  # left the line for a callback: offered, not answered live
    wait_answered_s: float = 0.0
    talk_s: float = 0.0
    wrap_up_s: float = 0.0
    records: int = 0  # answered calls with an interaction record
    resolved: int = 0
    excluded: int = 0  # その他: city staff, sales, wrong numbers, one-ring
    classes: dict[str, int] = field(default_factory=dict)
    handling_s: float = 0.0  # operators on calls, ringing, in after-call work
    available_s: float = 0.0  # operators ready and idle

    @property
    def answer_rate(self) -> float | None:
        return answer_rate(self.answered, self.offered)

    @property
    def quick_answer_rate(self) -> float | None:
        return quick_answer_rate(self.quick, self.answered)

    @property
    def fcr(self) -> float | None:
        return fcr(self.resolved, self.answered, self.excluded)

    @property
    def abandon_rate(self) -> float | None:
        return abandon_rate(self.abandoned, self.short_abandoned, self.offered)

    @property
    def asa_s(self) -> float | None:
        return ratio(self.wait_answered_s, self.answered)

    @property
    def aht_s(self) -> float | None:
        return ratio(self.talk_s + self.wrap_up_s, self.answered)

    @property
    def occupancy(self) -> float | None:
        return ratio(self.handling_s, self.handling_s + self.available_s)

    def as_json(self) -> dict[str, Any]:
        def r(v: float | None, n: int = 4) -> float | None:
            return None if v is None else round(v, n)

        return {
            "offered": self.offered, "answered": self.answered, "quick": self.quick,
            "abandoned": self.abandoned, "short_abandoned": self.short_abandoned,
            "overflow": self.overflow, "callback_requested": self.callback_requested,
            "records": self.records,
            "without_record": self.answered - self.records, "resolved": self.resolved,
            "excluded": self.excluded, "classes": dict(sorted(self.classes.items())),
            "answer_rate": r(self.answer_rate), "quick_answer_rate": r(self.quick_answer_rate),
            "fcr": r(self.fcr), "abandon_rate": r(self.abandon_rate),
            "asa_s": r(self.asa_s, 1), "aht_s": r(self.aht_s, 1),
            "occupancy": r(self.occupancy),
            "met": {name: (None if (v := getattr(self, name)) is None else v >= target)
                    for name, target in TARGETS.items()},
        }


def add_call(k: Kpi, call: CallFacts, interaction: InteractionFacts | None,
             short_abandon_s: float = DEFAULT_SHORT_ABANDON_S) -> None:
    if call.outcome not in OFFERED_OUTCOMES:
        return  # ended in the IVR: never offered to an operator
    k.offered += 1
    if call.answered:
        k.answered += 1
        k.quick += is_quick(call.wait_s)
        k.wait_answered_s += call.wait_s or 0.0
        k.talk_s += call.talk_s or 0.0
        if interaction is not None:
            k.records += 1
            cls = interaction.outcome_class
            k.classes[cls.value] = k.classes.get(cls.value, 0) + 1
            k.resolved += cls in RESOLVED
            k.excluded += cls is OutcomeClass.OTHER
    elif call.outcome == Outcome.OVERFLOW:
        k.overflow += 1
    elif call.outcome == Outcome.CALLBACK_REQUESTED:
        k.callback_requested += 1  # kept their place as a callback: not an abandon
    else:
        k.abandoned += 1
        if call.wait_s is not None and call.wait_s < short_abandon_s:
            k.short_abandoned += 1


def add_spans(k: Kpi, spans: Iterable[StateSpan]) -> None:
    for span in spans:
        if span.state in ("on_call", "ringing", "wrap_up"):
            k.handling_s += span.seconds
            if span.state == "wrap_up":
                k.wrap_up_s += span.seconds
        elif span.state == "available":
            k.available_s += span.seconds


BUCKETS: Mapping[str, Callable[[datetime], str]] = {
    "hour": lambda t: t.astimezone(CITY_TZ).strftime("%Y-%m-%dT%H"),
    "halfhour": lambda t: (lambda x: x.strftime("%Y-%m-%dT%H:") + ("30" if x.minute >= 30
                                                                   else "00"))(
        t.astimezone(CITY_TZ)),
    "day": lambda t: t.astimezone(CITY_TZ).strftime("%Y-%m-%d"),
    "month": lambda t: t.astimezone(CITY_TZ).strftime("%Y-%m"),
    "hour_of_day": lambda t: t.astimezone(CITY_TZ).strftime("%H"),
    "weekday": lambda t: str(t.astimezone(CITY_TZ).isoweekday()),
}


def compute(calls: Sequence[CallFacts], interactions: Mapping[str, InteractionFacts],
            spans: Iterable[StateSpan] = (), by: str | None = None,
            short_abandon_s: float = DEFAULT_SHORT_ABANDON_S) -> tuple[Kpi, dict[str, Kpi]]:
    """The KPIs over all calls and, with `by` (hour, halfhour, day, month, hour_of_day,
    weekday; Asia/Tokyo), per group. Operator state spans count in the group where they
    start; kpi.service.state_spans cuts them at half-hours so none spans two groups."""
    if by is not None and by not in BUCKETS:
        raise ValueError(f"by must be one of {', '.join(BUCKETS)}")
    total = Kpi()
    groups: dict[str, Kpi] = {}
    key = BUCKETS[by] if by is not None else None
    for call in calls:
        inter = interactions.get(call.call_id)
        add_call(total, call, inter, short_abandon_s)
        if key is not None:
            add_call(groups.setdefault(key(call.offered_at), Kpi()), call, inter,
                     short_abandon_s)
    for span in spans:
        add_spans(total, (span,))
        if key is not None:
            add_spans(groups.setdefault(key(span.at), Kpi()), (span,))
    return total, dict(sorted(groups.items()))


@dataclass(frozen=True)
class CallbackFacts:
    """One callback a call of the period booked."""

    call_id: str  # the inbound call that asked
    state: str | None  # acd.callbacks.CallbackState's value; None: not stored
    requested_at: datetime | None
    reached_at: datetime | None  # the citizen answered (the callback's call record)


@dataclass
class CallbackKpi:
    """The callbacks booked by the calls of a period, and the answer rate counting them."""

    offered: int = 0  # the period's offered calls (the answer rate's denominator)
    answered: int = 0  # answered live
    requested: int = 0
    done: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0  # by a supervisor (the citizen asked, or it was booked twice)
    pending: int = 0  # waiting for their turn or their next attempt, or being dialled
    reached_s: float = 0.0  # Σ request → the citizen's answer, over `timed`
    timed: int = 0

    @property
    def mean_to_reach_s(self) -> float | None:
        return ratio(self.reached_s, self.timed)

    @property
    def answer_rate_with_callbacks(self) -> float | None:
        return ratio(self.answered + self.done, self.offered)

    def as_json(self) -> dict[str, Any]:
        mean, rate = self.mean_to_reach_s, self.answer_rate_with_callbacks
        return {"requested": self.requested, "done": self.done, "failed": self.failed,
                "expired": self.expired, "cancelled": self.cancelled,
                "pending": self.pending,
                "mean_to_reach_s": None if mean is None else round(mean, 1),
                "answer_rate_with_callbacks": None if rate is None else round(rate, 4)}


def callback_kpi(k: Kpi, booked: Iterable[CallbackFacts]) -> CallbackKpi:
    """`k`: the period's KPIs; `booked`: a fact per call of the period that asked for a
    callback. A callback counts as done when its citizen answered (or its state says so);
    one not stored, or still open, is pending."""
    out = CallbackKpi(offered=k.offered, answered=k.answered)
    for cb in booked:
        out.requested += 1
        if cb.reached_at is not None or cb.state == "done":
            out.done += 1
            if cb.reached_at is not None and cb.requested_at is not None:
                out.reached_s += max(0.0, (cb.reached_at - cb.requested_at).total_seconds())
                out.timed += 1
        elif cb.state == "failed":
            out.failed += 1
        elif cb.state == "expired":
            out.expired += 1
        elif cb.state == "cancelled":
            out.cancelled += 1
        else:
            out.pending += 1
    return out
