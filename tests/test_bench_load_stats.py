"""The load benchmark's figures from AMI events (bench/load_stats.py is pure)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from bench.load_stats import fairness, percentile, summarize


def ev(name: str, ts: float, chan: str, uid: str, **extra: str) -> dict[str, str]:
    return {"Event": name, "Timestamp": f"{ts:.6f}", "Channel": chan, "Uniqueid": uid,
            "CallerIDNum": extra.pop("caller", "0310"), **extra}


def call(n: int, key_at: float, ring_at: float, answer_at: float, end_at: float,
         agent: str) -> list[dict[str, str]]:
    caller, leg = f"c{n}", f"o{n}"
    chan = f"PJSIP/trunk-{n:08x}"
    return [
        ev("Newchannel", key_at - 2, chan, caller, caller=f"031{n}"),
        ev("DTMFEnd", key_at, chan, caller, caller=f"031{n}", Direction="Received"),
        ev("Newchannel", ring_at, f"PJSIP/{agent}-{n:08x}", leg),
        ev("BridgeEnter", answer_at - 0.01, f"PJSIP/{agent}-{n:08x}", leg,
           BridgeUniqueid=f"b{n}"),
        ev("BridgeEnter", answer_at, chan, caller, caller=f"031{n}", BridgeUniqueid=f"b{n}"),
        ev("Hangup", end_at, f"PJSIP/{agent}-{n:08x}", leg),
        ev("Hangup", end_at + 0.01, chan, caller, caller=f"031{n}"),
    ]


def test_latencies_fairness_and_concurrency_from_events() -> None:
    events = sorted(
        call(1, key_at=10.0, ring_at=10.004, answer_at=10.3, end_at=12.0, agent="7001")
        + call(2, key_at=10.5, ring_at=10.505, answer_at=10.8, end_at=12.5, agent="7002")
        # 7001 is busy until 12.0 + 1 s wrap-up: the third caller waits for it
        + call(3, key_at=11.0, ring_at=13.01, answer_at=13.3, end_at=14.0, agent="7001")
        + [ev("DTMFEnd", 11.5, "PJSIP/trunk-000000ff", "x", caller="0999",
              Direction="Received")],  # another run's caller: not counted
        key=lambda e: float(e["Timestamp"]))
    f = summarize(events, "031", wrap_up=1.0)
    assert (f.offered, f.answered, f.unlinked) == (3, 3, 0)
    assert f.per_agent == Counter({"7001": 2, "7002": 1})
    assert [round(x, 3) for x in f.offer_to_ring] == [0.004, 0.005, 2.01]
    # the third call's dispatch counts from 7001's end of wrap-up (13.0), not from its key
    assert [round(x, 3) for x in f.dispatch] == [0.004, 0.005, 0.01]
    assert [round(x, 3) for x in f.time_to_answer] == [0.3, 0.3, 2.3]
    assert f.max_concurrent == 2


def test_a_call_never_answered_is_offered_not_answered() -> None:
    chan = "PJSIP/trunk-00000001"
    f = summarize([ev("Newchannel", 1, chan, "c1"),
                   ev("DTMFEnd", 2, chan, "c1", Direction="Received"),
                   ev("Hangup", 30, chan, "c1")], "03", wrap_up=1.0)
    assert (f.offered, f.answered, f.offer_to_ring) == (1, 0, [])


def test_percentile_and_fairness() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(x) for x in range(1, 101)], 95) == 95.0
    assert math.isnan(percentile([], 95))
    spread, stdev = fairness({"7001": 20, "7002": 21}, ["7001", "7002", "7003"])
    assert spread == 21  # an operator who took no call counts
    assert stdev == pytest.approx(9.672, abs=1e-3)
