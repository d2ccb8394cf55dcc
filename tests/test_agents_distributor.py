from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from acd.agents import MISSED, TRANSITIONS, Agent, AgentEvent, AgentState, IllegalTransition
from acd.distributor import next_assignment, pick_agent
from core.calls import Call

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def agent(agent_id: str, idle_min: int, state: AgentState = AgentState.AVAILABLE,
          reachable: bool = True, queues: tuple[str, ...] = ("city",)) -> Agent:
    return Agent(agent_id, queues, T0 - timedelta(minutes=idle_min), state, reachable)


def call(n: int, queue: str, waited_s: int, priority: int = 0) -> Call:
    c = Call(f"{n}.0", f"PJSIP/trunk-{n:08d}", "city", "1000", "03", T0, id=f"{n:032x}")
    c.queue, c.priority = queue, priority
    c.queued_at = T0 - timedelta(seconds=waited_s)
    return c


def test_longest_idle_ready_agent_is_picked() -> None:
    agents = [agent("7001", 1), agent("7002", 5), agent("7003", 3)]
    assert pick_agent(agents, "city") is agents[1]


@pytest.mark.parametrize("state", [s for s in AgentState if s is not AgentState.AVAILABLE])
def test_only_available_agents_are_rung(state: AgentState) -> None:
    agents = [agent("7001", 50, state), agent("7002", 1)]
    assert pick_agent(agents, "city") is agents[1]


def test_unreachable_and_other_queue_agents_are_skipped() -> None:
    agents = [agent("7003", 30, reachable=False), agent("7004", 20, queues=("water",)),
              agent("7005", 1)]
    assert pick_agent(agents, "city") is agents[2]
    assert pick_agent(agents, "water") is agents[1]
    assert pick_agent([], "city") is None


def test_ties_go_to_lower_extension() -> None:
    agents = [agent("7003", 2), agent("7001", 2), agent("7002", 2)]
    assert pick_agent(agents, "city") is agents[1]


def test_calls_are_taken_by_priority_then_arrival_across_queues() -> None:
    both = agent("7001", 5, queues=("city", "water"))
    lines = {"city": [call(1, "city", 30), call(2, "city", 10)],
             "water": [call(3, "water", 60)]}
    assert next_assignment(lines, [both]) == (lines["water"][0], both)
    lines["city"][0].priority = 1
    assert next_assignment(lines, [both]) == (lines["city"][0], both)


def test_a_queue_without_ready_agents_does_not_block_another() -> None:
    water_only = agent("7002", 5, queues=("water",))
    lines = {"city": [call(1, "city", 99)], "water": [call(2, "water", 1)]}
    assert next_assignment(lines, [water_only]) == (lines["water"][0], water_only)


def test_calls_spread_evenly_over_many_calls() -> None:
    agents = [agent(f"70{i:02d}", 0) for i in range(5)]
    counts = dict.fromkeys((a.id for a in agents), 0)
    now = T0
    for _ in range(100):
        now += timedelta(seconds=30)
        chosen = pick_agent(agents, "city")
        assert chosen is not None
        counts[chosen.id] += 1
        chosen.apply(AgentEvent.OFFER, now)
        chosen.apply(AgentEvent.ANSWER, now)
        chosen.apply(AgentEvent.HANGUP, now + timedelta(seconds=1))
        chosen.apply(AgentEvent.END_WRAP_UP, now + timedelta(seconds=2))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_randomised_run_starves_nobody_ready() -> None:
    """1,000 calls, random talk times, random breaks: every time an agent is picked, no
    other ready agent has been idle longer, and everyone who stayed ready got calls."""
    rng = random.Random(20261126)
    agents = [agent(f"70{i:02d}", rng.randint(0, 5)) for i in range(8)]
    busy_until: dict[str, datetime] = {}
    counts = dict.fromkeys((a.id for a in agents), 0)
    now = T0
    for _ in range(1000):
        now += timedelta(seconds=rng.randint(1, 20))
        for a in agents:  # finish conversations and wrap-ups that are due
            if a.state is AgentState.ON_CALL and busy_until[a.id] <= now:
                a.apply(AgentEvent.HANGUP, busy_until[a.id])
            if a.state is AgentState.WRAP_UP and busy_until[a.id] <= now:
                a.apply(AgentEvent.END_WRAP_UP, busy_until[a.id])
            if a.state is AgentState.AWAY and rng.random() < 0.3:
                a.apply(AgentEvent.BACK, now)
            elif a.state is AgentState.AVAILABLE and rng.random() < 0.01:
                a.apply(AgentEvent.AWAY, now, "break")
        chosen = pick_agent(agents, "city")
        if chosen is None:
            continue
        ready = [a for a in agents if a.state is AgentState.AVAILABLE]
        assert all(chosen.idle_since <= a.idle_since for a in ready)
        chosen.apply(AgentEvent.OFFER, now)
        if rng.random() < 0.05:
            chosen.apply(AgentEvent.NO_ANSWER, now)
            assert chosen.reason == MISSED
            continue
        chosen.apply(AgentEvent.ANSWER, now)
        counts[chosen.id] += 1
        busy_until[chosen.id] = now + timedelta(seconds=rng.randint(30, 300))
    mean = sum(counts.values()) / len(counts)
    assert sum(counts.values()) > 400
    assert min(counts.values()) >= 0.75 * mean, counts


def test_full_call_cycle_goes_through_wrap_up() -> None:
    a = agent("7001", 10)
    a.apply(AgentEvent.OFFER, T0)
    a.apply(AgentEvent.ANSWER, T0)
    change = a.apply(AgentEvent.HANGUP, T0 + timedelta(minutes=2))
    assert (change.old, change.new) == (AgentState.ON_CALL, AgentState.WRAP_UP)
    a.apply(AgentEvent.END_WRAP_UP, T0 + timedelta(minutes=3))
    assert a.state is AgentState.AVAILABLE
    assert a.idle_since == T0 + timedelta(minutes=3)


def test_missed_ring_makes_the_agent_away_missed() -> None:
    a = agent("7001", 10)
    a.apply(AgentEvent.OFFER, T0)
    change = a.apply(AgentEvent.NO_ANSWER, T0)
    assert (a.state, a.reason, change.reason) == (AgentState.AWAY, MISSED, MISSED)


def test_caller_leaving_during_the_ring_keeps_the_agents_place() -> None:
    a = agent("7001", 10)
    before = a.idle_since
    a.apply(AgentEvent.OFFER, T0)
    a.apply(AgentEvent.CALLER_GONE, T0)
    assert a.state is AgentState.AVAILABLE and a.idle_since == before


def test_away_needs_a_reason() -> None:
    a = agent("7001", 10)
    with pytest.raises(ValueError):
        a.apply(AgentEvent.AWAY, T0)
    assert a.state is AgentState.AVAILABLE


@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("event", list(AgentEvent))
def test_every_pair_outside_the_table_is_refused_and_changes_nothing(
        state: AgentState, event: AgentEvent) -> None:
    a = agent("7001", 10, state)
    before = (a.state, a.idle_since, a.state_since, a.reason)
    if (state, event) in TRANSITIONS:
        assert a.apply(event, T0, "break").new is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(IllegalTransition):
            a.apply(event, T0, "break")
        assert (a.state, a.idle_since, a.state_since, a.reason) == before
