"""KPI formulas on a hand-computed fixture (REQUIREMENTS §9), FCR exclusions included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kpi.formulas import (
    CallbackFacts,
    CallFacts,
    InteractionFacts,
    Kpi,
    OutcomeClass,
    StateSpan,
    abandon_rate,
    answer_rate,
    callback_kpi,
    compute,
    fcr,
    quick_answer_rate,
)
from kpi.service import state_spans
from store.models import AgentStateChange

T0 = datetime(2026, 11, 2, 0, 10, tzinfo=UTC)  # 09:10 in Tokyo


def call(n: int, outcome: str, wait: float | None, talk: float | None = None,
         minutes: int = 0) -> CallFacts:
    return CallFacts("city", T0 + timedelta(minutes=minutes), outcome, outcome == "answered",
                     wait, talk, f"c{n}")


# 12 calls: 8 answered, 2 abandoned while waiting (one within 5 s), 1 overflow, 1 in the IVR
CALLS = [
    call(1, "answered", 5, 100), call(2, "answered", 9.0, 200), call(3, "answered", 12, 120),
    call(4, "answered", 20, 60), call(5, "answered", 3, 30), call(6, "answered", 2, 10),
    call(7, "answered", 1, 5, minutes=60), call(8, "answered", 4, 90, minutes=60),
    call(9, "abandoned_waiting", 3), call(10, "abandoned_waiting", 40, minutes=60),
    call(11, "overflow", 300, minutes=60), call(12, "ended_in_ivr", None),
]
C = OutcomeClass
RECORDS = {f"c{n}": InteractionFacts(f"c{n}", cls) for n, cls in [
    (1, C.COMPLETE), (2, C.PARTIAL), (3, C.TRANSFER_FAQ), (4, C.PUT_THROUGH), (5, C.TRANSFER),
    (6, C.OTHER), (7, C.OTHER)]}  # c8 answered without a record
SPANS = [StateSpan("7001", "on_call", T0, 600), StateSpan("7001", "wrap_up", T0, 200),
         StateSpan("7001", "available", T0, 400), StateSpan("7001", "away", T0, 300)]


def test_totals_match_hand_computation() -> None:
    k, _ = compute(CALLS, RECORDS, SPANS)
    assert (k.offered, k.answered, k.abandoned, k.short_abandoned, k.overflow) == (11, 8, 2, 1, 1)
    assert k.answer_rate == pytest.approx(8 / 11)
    # waits ≤ 9 s: c1 c2 (exactly 9 s counts) c5 c6 c7 c8; c3 and c4 waited longer
    assert k.quick == 6 and k.quick_answer_rate == pytest.approx(0.75)
    # 完了 + 一部完了 + 転送F = 3; その他 (city staff, one-ring) leave the denominator: 8 − 2
    assert (k.resolved, k.excluded, k.records) == (3, 2, 7)
    assert k.fcr == pytest.approx(0.5)
    assert k.abandon_rate == pytest.approx((2 - 1) / (11 - 1))
    assert k.asa_s == pytest.approx(56 / 8)
    assert k.aht_s == pytest.approx((615 + 200) / 8)
    assert k.occupancy == pytest.approx(800 / 1200)
    j = k.as_json()
    assert j["met"] == {"answer_rate": False, "quick_answer_rate": False, "fcr": True}
    assert j["without_record"] == 1
    assert j["classes"] == {"その他": 2, "一部完了": 1, "取次": 1, "完了": 1, "転送": 1, "転送F": 1}


def test_missing_record_stays_unresolved_in_the_denominator() -> None:
    with_c8 = {**RECORDS, "c8": InteractionFacts("c8", C.COMPLETE)}
    assert compute(CALLS, with_c8)[0].fcr == pytest.approx(4 / 6)
    other = {**RECORDS, "c8": InteractionFacts("c8", C.OTHER)}
    assert compute(CALLS, other)[0].fcr == pytest.approx(3 / 5)


def test_short_abandon_threshold_is_configurable() -> None:
    assert compute(CALLS, RECORDS, short_abandon_s=0)[0].abandon_rate == pytest.approx(2 / 11)
    k = compute(CALLS, RECORDS, short_abandon_s=60)[0]
    assert k.short_abandoned == 2 and k.abandon_rate == pytest.approx(0.0)
    assert k.answer_rate == pytest.approx(8 / 11)  # the spec's answer rate ignores the threshold


def test_groups_by_tokyo_hour() -> None:
    _, groups = compute(CALLS, RECORDS, SPANS, by="hour")
    assert list(groups) == ["2026-11-02T09", "2026-11-02T10"]
    nine, ten = groups.values()
    assert (nine.offered, nine.answered, nine.quick) == (7, 6, 4)
    assert (ten.offered, ten.answered, ten.quick) == (4, 2, 2)
    assert ten.answer_rate == pytest.approx(0.5)
    assert nine.occupancy == pytest.approx(800 / 1200)  # spans land in the hour they start
    with pytest.raises(ValueError, match="by must be one of"):
        compute(CALLS, RECORDS, by="week")


def test_empty_denominators_give_none() -> None:
    k = Kpi()
    assert k.answer_rate is None and k.quick_answer_rate is None and k.fcr is None
    assert k.as_json()["met"]["fcr"] is None
    assert answer_rate(0, 0) is None and quick_answer_rate(1, 0) is None
    assert fcr(0, 2, 2) is None and abandon_rate(1, 1, 1) is None


def test_state_history_cut_to_period() -> None:
    start, end = T0, T0 + timedelta(hours=1)

    def ch(agent: str, state: str, minutes: int) -> AgentStateChange:
        return AgentStateChange(agent_id=agent, event="x", old_state="", new_state=state,
                                reason=None, at=T0 + timedelta(minutes=minutes))

    spans = state_spans([ch("a", "available", -30), ch("a", "on_call", 10),
                         ch("a", "wrap_up", 20), ch("a", "away", 25),
                         ch("b", "available", 50), ch("b", "logged_out", 70)], start, end)
    got = sorted((s.agent_id, s.state, s.seconds) for s in spans)
    # a's time away (00:35–01:10 UTC) is cut at the half-hour 01:00
    assert got == [("a", "available", 600), ("a", "away", 600), ("a", "away", 1500),
                   ("a", "on_call", 600), ("a", "wrap_up", 300), ("b", "available", 600)]


def test_a_booked_callback_is_offered_not_answered_and_not_abandoned() -> None:
    booked = call(13, "callback_requested", 240)
    # the center's callback call: answered by an operator, yet never offered nor answered
    ours = CallFacts("city", T0, "callback", True, None, 300, "c14")
    k = compute([*CALLS, booked, ours], {**RECORDS, "c14": InteractionFacts("c14", C.COMPLETE)})[0]
    assert (k.offered, k.answered, k.abandoned, k.overflow, k.callback_requested) == (
        12, 8, 2, 1, 1)
    assert k.answer_rate == pytest.approx(8 / 12)
    assert k.abandon_rate == pytest.approx((2 - 1) / (12 - 1))
    assert (k.talk_s, k.resolved) == (615, 3)  # nothing of the callback call
    assert k.as_json()["callback_requested"] == 1


def test_callback_figures_and_the_answer_rate_including_them() -> None:
    asked = T0 + timedelta(minutes=2)
    bookers = [CallFacts("city", T0, "callback_requested", False, 200, None, f"b{n}")
               for n in range(1, 9)]
    k = compute([*CALLS, *bookers], RECORDS)[0]
    assert (k.offered, k.answered) == (19, 8)
    booked = [
        CallbackFacts("b1", "done", asked, asked + timedelta(minutes=10)),
        CallbackFacts("b2", "done", asked, asked + timedelta(minutes=30)),
        # the citizen answered, its state not stored yet: done, timed
        CallbackFacts("b3", "dialing", asked, asked + timedelta(minutes=20)),
        CallbackFacts("b4", "failed", asked, None),
        CallbackFacts("b5", "expired", asked, None),
        CallbackFacts("b6", "pending", asked, None),
        CallbackFacts("b7", "dialing", asked, None),
        CallbackFacts("b8", None, None, None),  # not stored: still pending as far as known
    ]
    c = callback_kpi(k, booked)
    assert (c.requested, c.done, c.failed, c.expired, c.pending) == (8, 3, 1, 1, 3)
    assert c.mean_to_reach_s == pytest.approx(20 * 60)
    assert k.answer_rate == pytest.approx(8 / 19)  # the spec's rate: callbacks not in it
    assert c.answer_rate_with_callbacks == pytest.approx((8 + 3) / 19)
    assert c.as_json() == {"requested": 8, "done": 3, "failed": 1, "expired": 1,
                           "cancelled": 0, "pending": 3,
                           "mean_to_reach_s": 1200.0,
                           "answer_rate_with_callbacks": round(11 / 19, 4)}
    empty = callback_kpi(Kpi(), [])
    assert empty.mean_to_reach_s is None and empty.answer_rate_with_callbacks is None
