"""How long a waiting caller can expect to wait, from how fast the queue has been answering.

The model. While callers wait, every operator serving the queue is busy: their phone rings,
they talk, or they do the after-call work. Each comes free again, on average, one *cycle*
after their phone started ringing (the ring up to the answer, the conversation and the
after-call work), and then takes the first caller in line. With n operators serving, the
queue answers n / cycle calls a second, so the line moves up one place every cycle / n
seconds on average, and the caller at position k is rung after about k × cycle / n seconds
and answered one ring later:

    wait(k) = k × cycle / n + ring

- cycle and ring are the means over the queue's recent answered calls: the last
  RECENT_CALLS whose after-call work ended within the last RECENT_S seconds (its recent
  answer rate, measured from handling and answer times rather than configured).
- n counts the operators serving the queue now: logged in, not away, phone reachable
  (`serving_operators`). Those are the ones the line is waiting for.
- Conversations in progress are not looked into: handling times are close to memoryless, so
  a call already under way has on average about a whole handling time left (exact for the
  exponential handling times of the simulation in tests/test_wait_estimate.py).

No figure (None) when there is nothing to stand behind: nobody serves the queue now, or
fewer than MIN_CALLS recent answered calls to measure the rate from. Callers then hear their
position only. A figure above the announcement's cap is said as "more than 10 minutes"
(acd/announcements.py), never as a number.

Pure: the ACD records answered calls into a `History` and calls `expected_wait`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .agents import Agent, AgentState

RECENT_CALLS = 30  # enough for a stable mean, few enough to follow the day's changes
RECENT_S = 2 * 3600.0  # older calls say little about the operators working now
MIN_CALLS = 3  # below this, a mean handling time is a guess


@dataclass(frozen=True)
class Handled:
    """One answered call as the estimate sees it, recorded when its operator is free again."""

    done_at: datetime  # the after-call work ended (or the operator left it)
    cycle_s: float  # from the operator's phone ringing to the operator being free again
    ring_s: float  # from the operator's phone ringing to the answer


def serving_operators(agents: Iterable[Agent], queue: str) -> int:
    """Operators the queue's line is waiting for: serving it, logged in, not away, reachable."""
    return sum(1 for a in agents if queue in a.queues and a.reachable
               and a.state not in (AgentState.LOGGED_OUT, AgentState.AWAY))


def recent(handled: Sequence[Handled], now: datetime) -> list[Handled]:
    """The calls the rate is measured from: the last RECENT_CALLS within RECENT_S."""
    fresh = [h for h in handled if 0 <= (now - h.done_at).total_seconds() <= RECENT_S]
    return fresh[-RECENT_CALLS:]


def expected_wait(position: int, serving: int, handled: Sequence[Handled],
                  now: datetime) -> float | None:
    """Seconds until the caller at `position` (1 = next) is answered, or None when the ACD
    cannot stand behind a figure (nobody serving, too few recent calls). `handled` is in
    the order the calls ended."""
    if position < 1 or serving < 1:
        return None
    calls = recent(handled, now)
    if len(calls) < MIN_CALLS:
        return None
    cycle = sum(h.cycle_s for h in calls) / len(calls)
    ring = sum(h.ring_s for h in calls) / len(calls)
    return position * cycle / serving + ring


class History:
    """Recent answered calls per queue, as `expected_wait` reads them."""

    def __init__(self) -> None:
        self._by_queue: dict[str, deque[Handled]] = {}

    def record(self, queue: str, handled: Handled) -> None:
        line = self._by_queue.setdefault(queue, deque(maxlen=RECENT_CALLS))
        line.append(handled)

    def of(self, queue: str) -> tuple[Handled, ...]:
        return tuple(self._by_queue.get(queue, ()))
