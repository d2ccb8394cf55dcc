"""What a waiting caller is told: their place in line and, when the ACD can stand behind
it, the expected wait, in the caller's language.

- Position: the caller's place in the order operators will take calls: 1 + the waiting
  calls ahead of them (priority, then time queued, as the distributor serves them) in their
  own line and in the lines of the other queues their operators also serve. With one queue
  per operator pool that is simply their place in their line.
- Expected wait (acd/wait_estimate.py), said in whole minutes, at least 1; above CAP_S it is
  "more than 10 minutes", never a bigger number. With no figure (nobody serving the queue is
  logged in and reachable, or too few recent calls to measure the rate) only the position
  is said: it is still true, and the caller knows they are in line.
- Said again only when the text changed since the caller last heard it (`decide`).

Pure: the ACD (acd/service.py) decides the text per caller; the IVR renders it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from core.calls import Call

from .agents import Agent
from .distributor import call_order

CAP_S = 600.0  # beyond this an estimate is not a figure anyone should plan by
CAP_MIN = int(CAP_S // 60)
TEXT_LANGUAGES = ("ja", "en")  # the first is the default for any other language


def wait_minutes(wait_s: float) -> int | None:
    """The figure said, in minutes (at least 1), or None above the cap."""
    if wait_s > CAP_S:
        return None
    return max(1, math.floor(wait_s / 60 + 0.5))


def text(position: int, wait_s: float | None, language: str) -> str:
    """The sentence for a caller at `position` with an expected wait (None: no figure)."""
    if language == "en":
        out = f"You are number {position} in line."
        if wait_s is not None:
            minutes = wait_minutes(wait_s)
            if minutes is None:
                out += f" The expected waiting time is more than {CAP_MIN} minutes."
            else:
                unit = "minute" if minutes == 1 else "minutes"
                out += f" The expected waiting time is about {minutes} {unit}."
        return out
    out = f"ただいま、あなたの順番は{position}番目です。"
    if wait_s is not None:
        minutes = wait_minutes(wait_s)
        if minutes is None:
            out += f"お待ちいただく時間は、{CAP_MIN}分以上の見込みです。"
        else:
            out += f"お待ちいただく時間は、およそ{minutes}分です。"
    return out


def language_of(call: Call) -> str:
    return call.language if call.language in TEXT_LANGUAGES else TEXT_LANGUAGES[0]


def decide(position: int, wait_s: float | None, language: str, last: str | None) -> str | None:
    """The text to put on the caller's channel now, or None when it would say nothing new
    (the same text as the last one they were given)."""
    said = text(position, wait_s, language)
    return None if said == last else said


def related_queues(queue: str, agents: Iterable[Agent]) -> frozenset[str]:
    """The queue and every other queue an operator serving it also serves (by
    configuration, not by who is logged in: a place in line does not jump with a logout)."""
    out = {queue}
    for agent in agents:
        if queue in agent.queues:
            out.update(agent.queues)
    return frozenset(out)


def positions(lines: Mapping[str, Sequence[Call]],
              related: Mapping[str, frozenset[str]]) -> dict[str, int]:
    """Every waiting call's position by call id (see the module): one sort per group of
    queues that share operators."""
    out: dict[str, int] = {}
    merged: dict[frozenset[str], dict[str, int]] = {}
    for queue, line in lines.items():
        group = related.get(queue, frozenset({queue}))
        if group not in merged:
            order = sorted((c for q in group for c in lines.get(q, ())), key=call_order)
            merged[group] = {c.id: i for i, c in enumerate(order, 1)}
        for call in line:
            out[call.id] = merged[group][call.id]
    return out
