"""The expected-wait estimator (acd/wait_estimate.py) against a simulated queue.

The simulation is a small discrete-event model of the ACD: Poisson arrivals, n operators,
each call rung for a few seconds then handled for an exponential time (conversation and
after-call work), callers served in arrival order. Every waiting caller is told an estimate
when they join the line and again at each announcement slot (every 30 s) when the sentence
changed, exactly as the ACD does; the estimator sees only the calls finished by then. Each
estimate is compared with the wait that followed. Seeded: the figures are the same on every
run. `pytest -s tests/test_wait_estimate.py` prints them. The bound asserted: the mean
absolute error of the figure said is at most 90 s, and the raw estimate's within 15 % (+5 s)
of the same formula fed the simulation's true means.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from acd.agents import Agent, AgentState
from acd.announcements import CAP_S, wait_minutes
from acd.wait_estimate import (
    MIN_CALLS,
    RECENT_CALLS,
    RECENT_S,
    Handled,
    History,
    expected_wait,
    recent,
    serving_operators,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SLOT_S = 30.0  # the queue's announce_every
Estimator = Callable[[int, int, Sequence[Handled], datetime], float | None]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# ---- the estimator on its own --------------------------------------------------------------

def handled(n: int, cycle: float, ring: float = 4.0, start: float = 0.0) -> list[Handled]:
    return [Handled(at(start + i), cycle, ring) for i in range(n)]


def test_position_times_the_cycle_over_the_operators_plus_a_ring() -> None:
    calls = handled(10, cycle=184.0, ring=4.0)
    now = at(100)
    assert expected_wait(1, 4, calls, now) == pytest.approx(184 / 4 + 4)
    assert expected_wait(3, 4, calls, now) == pytest.approx(3 * 184 / 4 + 4)
    assert expected_wait(3, 2, calls, now) == pytest.approx(3 * 184 / 2 + 4)


def test_no_figure_without_operators_or_recent_calls() -> None:
    now = at(100)
    assert expected_wait(2, 0, handled(10, 120.0), now) is None  # nobody serving
    assert expected_wait(2, 3, handled(MIN_CALLS - 1, 120.0), now) is None  # too few calls
    assert expected_wait(2, 3, handled(MIN_CALLS, 120.0), now) is not None
    # calls older than RECENT_S do not count
    assert expected_wait(2, 3, handled(10, 120.0), at(RECENT_S + 20)) is None
    assert expected_wait(0, 3, handled(10, 120.0), now) is None


def test_only_the_last_calls_count() -> None:
    old = handled(RECENT_CALLS, cycle=600.0)
    new = handled(RECENT_CALLS, cycle=60.0, ring=0.0, start=RECENT_CALLS)
    now = at(3 * RECENT_CALLS)
    assert recent(old + new, now) == new
    assert expected_wait(1, 1, old + new, now) == pytest.approx(60.0)


def test_history_keeps_the_last_calls_per_queue() -> None:
    history = History()
    for h in handled(RECENT_CALLS + 5, 100.0):
        history.record("city", h)
    history.record("water", Handled(at(1), 50.0, 1.0))
    assert len(history.of("city")) == RECENT_CALLS
    assert history.of("city")[0].done_at == at(5)
    assert [h.cycle_s for h in history.of("water")] == [50.0]
    assert history.of("none") == ()


def test_serving_operators_are_logged_in_not_away_and_reachable() -> None:
    def agent(i: str, state: AgentState, reachable: bool = True,
              queues: tuple[str, ...] = ("city",)) -> Agent:
        return Agent(i, queues, T0, state=state, reachable=reachable)

    agents = [agent("1", AgentState.ON_CALL), agent("2", AgentState.WRAP_UP),
              agent("3", AgentState.RINGING), agent("4", AgentState.AVAILABLE),
              agent("5", AgentState.AWAY), agent("6", AgentState.LOGGED_OUT),
              agent("7", AgentState.ON_CALL, reachable=False),
              agent("8", AgentState.ON_CALL, queues=("water",))]
    assert serving_operators(agents, "city") == 4
    assert serving_operators(agents, "water") == 1


# ---- the simulated queue -------------------------------------------------------------------

@dataclass
class Caller:
    arrived: float
    answered: float | None = None
    # (time, position, estimate in seconds or None) of each announcement made to the caller
    told: list[tuple[float, int, float | None]] = field(default_factory=list)


@dataclass
class Day:
    callers: list[Caller]

    def announcements(self) -> list[tuple[float | None, float]]:
        """(estimate, the wait that followed) for every announcement to an answered caller."""
        return [(est, c.answered - t) for c in self.callers if c.answered is not None
                for t, _, est in c.told]


def simulate(seed: int, operators: int, per_hour: float, handle_s: float, ring_s: float,
             hours: float, staffing: dict[float, int] | None = None,
             estimator: Estimator = expected_wait) -> Day:
    """One day of the queue. `staffing` changes the number of operators at given hours
    (a leaving operator finishes the call in hand). `estimator(position, serving, history,
    now)` replaces expected_wait (the oracle below)."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str, int]] = []
    seq = 0

    def push(t: float, kind: str, who: int = -1) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, who))

    end = hours * 3600
    t = rng.expovariate(per_hour / 3600)
    while t < end:
        push(t, "arrive")
        t += rng.expovariate(per_hour / 3600)
    for hour, n in (staffing or {}).items():
        push(hour * 3600, "staff", n)
    staff, busy = operators, 0
    line: deque[int] = deque()
    callers: list[Caller] = []
    history: list[Handled] = []
    last_text: dict[int, tuple[int, int | None] | None] = {}
    rung_answered: dict[int, tuple[float, float]] = {}  # by caller, for the operator's record

    def tell(now: float, who: int, position: int) -> None:
        # the ACD keeps only the last calls; the estimator would drop the older ones anyway
        est = estimator(position, staff, history[-RECENT_CALLS:], at(now))
        said = (position, None if est is None else (wait_minutes(est) or -1))
        if last_text.get(who) != said:  # the ACD says it again only when it changed
            last_text[who] = said
            callers[who].told.append((now, position, est))

    def serve(now: float) -> None:
        nonlocal busy
        while line and busy < staff:
            who = line.popleft()
            busy += 1
            answered = now + ring_s
            callers[who].answered = answered
            free = answered + rng.expovariate(1 / handle_s)
            push(free, "free", who)
            rung_answered[who] = (now, answered)

    while events:
        now, _, kind, who = heapq.heappop(events)
        if kind == "arrive":
            callers.append(Caller(now))
            line.append(len(callers) - 1)
            serve(now)
            if callers[-1].answered is None:
                tell(now, len(callers) - 1, len(line))
                push(now + SLOT_S, "slot", len(callers) - 1)
        elif kind == "free":
            busy -= 1
            rung, answered = rung_answered.pop(who)
            history.append(Handled(at(now), now - rung, answered - rung))
            serve(now)
        elif kind == "staff":
            staff = who
            serve(now)
        elif kind == "slot" and callers[who].answered is None:
            tell(now, who, line.index(who) + 1)
            push(now + SLOT_S, "slot", who)
    return Day(callers)


def oracle(handle_s: float, ring_s: float) -> Estimator:
    """The same formula with the true means: the best any estimate of this form can do."""
    def estimate(position: int, serving: int, history: Sequence[Handled],
                 now: datetime) -> float | None:
        return position * (handle_s + ring_s) / serving + ring_s if serving else None
    return estimate


@dataclass(frozen=True)
class Scenario:
    name: str
    operators: int
    per_hour: float
    handle_s: float
    staffing: dict[float, int] | None = None


RING_S = 5.0
SCENARIOS = [
    # 4 operators, 3-minute calls, 95 % busy: queues of a few callers
    Scenario("steady, 95 % busy", 4, 74.0, 180.0),
    # one of six operators away for an hour: more calls than the others can take meanwhile
    Scenario("overloaded hour", 6, 120.0, 150.0, {1.0: 5, 2.0: 6}),
    # lunch: the estimate must follow the staffing now, not the rate of the past hour
    Scenario("one of five at lunch", 5, 80.0, 200.0, {2.0: 4, 3.0: 5}),
]
SEEDS = range(6)


def errors(days: list[Day]) -> dict[str, float]:
    """Mean absolute errors (seconds) of the raw estimate and of the figure said (whole
    minutes), the mean wait, and how often 'more than 10 minutes' was right."""
    pairs = [p for d in days for p in d.announcements()]
    figures = [(est, actual) for est, actual in pairs if est is not None and est <= CAP_S]
    capped = [actual for est, actual in pairs if est is not None and est > CAP_S]
    said = [(60 * (wait_minutes(est) or 0), actual) for est, actual in figures]
    return {
        "n": len(figures),
        "mae": sum(abs(e - a) for e, a in figures) / len(figures),
        "mae_said": sum(abs(e - a) for e, a in said) / len(said),
        "mean_wait": sum(a for _, a in figures) / len(figures),
        "capped": len(capped),
        "capped_right": sum(1 for a in capped if a > CAP_S) / len(capped) if capped else 1.0,
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_mean_absolute_error_against_the_simulated_queue(scenario: Scenario) -> None:
    days = [simulate(seed, scenario.operators, scenario.per_hour, scenario.handle_s, RING_S,
                     hours=6, staffing=scenario.staffing) for seed in SEEDS]
    best = [simulate(seed, scenario.operators, scenario.per_hour, scenario.handle_s, RING_S,
                     hours=6, staffing=scenario.staffing,
                     estimator=oracle(scenario.handle_s, RING_S)) for seed in SEEDS]
    ours, ideal = errors(days), errors(best)
    print(f"\n{scenario.name}: {ours['n']:.0f} estimates, mean wait {ours['mean_wait']:.0f} s;"
          f" MAE {ours['mae']:.0f} s (as said in minutes: {ours['mae_said']:.0f} s),"
          f" with the true means {ideal['mae']:.0f} s; 'more than {CAP_S / 60:.0f} minutes'"
          f" said {ours['capped']:.0f} times, right {ours['capped_right']:.0%}")
    assert ours["n"] > 1000
    # within 15 % (+5 s) of the same formula fed the true means: learning the rate from the
    # last calls costs little ...
    assert ours["mae"] <= 1.15 * ideal["mae"] + 5
    # ... and the figure as said (whole minutes) is off by at most 90 s on average, under
    # half the wait itself (handling times this random allow no much better)
    assert ours["mae_said"] <= 90
    assert ours["mae_said"] <= 0.45 * ours["mean_wait"]
    # 'more than 10 minutes' is said from the mean: right at least as often as not
    assert ours["capped_right"] >= 0.5
