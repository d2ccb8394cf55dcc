"""From the AMI events of one load run to its figures. Pure: no I/O, so it is unit-tested.

Every event carries Asterisk's own Timestamp (manager.conf timestampevents), so both runs are
measured with the PBX's clock, the same way:
- offer: the caller's key press that sends it to the queue (DTMFEnd received on the caller's
  leg): from there on the call is the queue's to place;
- ring: the operator's leg is created (Newchannel): the ACD or app_queue has chosen and is
  calling that operator;
- answer: the caller and the operator are in one bridge (the later BridgeEnter);
- an operator is free again at the hang-up of their leg plus the wrap-up.
"offer→ring" is ring − offer. "dispatch" is ring − max(offer, that operator free again): how
long a caller and a free operator wait for each other, whatever the load.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_OPERATOR = re.compile(r"^PJSIP/(\d{2,8})-")
_CALLER = re.compile(r"^PJSIP/trunk-")


@dataclass
class CallTimes:
    offer: float | None = None
    ring: float | None = None
    answer: float | None = None
    end: float | None = None
    agent: str | None = None


@dataclass
class RunFigures:
    offered: int
    answered: int
    per_agent: Counter[str]
    offer_to_ring: list[float]
    dispatch: list[float]
    time_to_answer: list[float]
    max_concurrent: int
    unlinked: int = 0  # answered bridges whose caller never pressed the key (should be 0)
    notes: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fairness(per_agent: Mapping[str, int], agents: Iterable[str]) -> tuple[int, float]:
    """max − min and the population standard deviation of calls per operator, counting the
    operators who took none."""
    counts = [per_agent.get(a, 0) for a in agents]
    if not counts:
        return 0, 0.0
    return max(counts) - min(counts), statistics.pstdev(counts)


def summarize(events: Iterable[Mapping[str, str]], caller_prefix: str,
              wrap_up: float) -> RunFigures:
    calls: dict[str, CallTimes] = {}  # by the caller leg's Uniqueid
    legs: dict[str, tuple[str, float]] = {}  # operator leg Uniqueid -> (agent, created)
    leg_end: dict[str, float] = {}
    bridges: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for ev in events:
        name, uid, chan = ev.get("Event", ""), ev.get("Uniqueid", ""), ev.get("Channel", "")
        ts = float(ev.get("Timestamp", "nan"))
        if _CALLER.match(chan):
            if not ev.get("CallerIDNum", "").startswith(caller_prefix):
                continue
            call = calls.setdefault(uid, CallTimes())
            if name == "DTMFEnd" and ev.get("Direction") == "Received" and call.offer is None:
                call.offer = ts
            elif name == "Hangup":
                call.end = ts
        elif (m := _OPERATOR.match(chan)) is not None:
            if name == "Newchannel":
                legs[uid] = (m.group(1), ts)
            elif name == "Hangup":
                leg_end[uid] = ts
        if name == "BridgeEnter":
            bridges[ev.get("BridgeUniqueid", "")].append((uid, ts))
    # link each caller to the operator leg it was bridged with
    for members in bridges.values():
        caller = next((u for u, _ in members if u in calls), None)
        leg = next((u for u, _ in members if u in legs), None)
        if caller is None or leg is None:
            continue
        call = calls[caller]
        if call.agent is None:  # the first operator who answered (transfers come later)
            call.agent, call.ring = legs[leg][0], legs[leg][1]
            call.answer = max(ts for _, ts in members)
    # when each operator was free again before each of their rings
    ends_by_agent: dict[str, list[float]] = defaultdict(list)
    for uid, end in leg_end.items():
        if uid in legs:
            ends_by_agent[legs[uid][0]].append(end)
    for ends in ends_by_agent.values():
        ends.sort()
    figures = RunFigures(offered=len(calls), answered=0, per_agent=Counter(),
                         offer_to_ring=[], dispatch=[], time_to_answer=[], max_concurrent=0)
    spans: list[tuple[float, int]] = []
    for call in calls.values():
        if call.agent is None or call.ring is None or call.answer is None:
            continue
        figures.answered += 1
        figures.per_agent[call.agent] += 1
        end = call.end if call.end is not None else call.answer
        spans += [(call.answer, 1), (end, -1)]
        if call.offer is None:
            figures.unlinked += 1
            continue
        figures.offer_to_ring.append(call.ring - call.offer)
        figures.time_to_answer.append(call.answer - call.offer)
        before = [e for e in ends_by_agent[call.agent] if e <= call.ring]
        free = before[-1] + wrap_up if before else -math.inf
        figures.dispatch.append(call.ring - max(call.offer, free))
    level = 0
    for _, step in sorted(spans):
        level += step
        figures.max_concurrent = max(figures.max_concurrent, level)
    return figures
