from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from acd.agents import TRANSITIONS, Agent, AgentEvent, AgentState, IllegalTransition
from acd.distributor import pick_agent

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def agent(agent_id: str, idle_min: int, state: AgentState = AgentState.AVAILABLE,
          reachable: bool = True, queues: tuple[str, ...] = ("city",)) -> Agent:
    return Agent(agent_id, queues, T0 - timedelta(minutes=idle_min), state, reachable)


def test_longest_idle_ready_agent_is_picked() -> None:
    agents = [agent("7001", 1), agent("7002", 5), agent("7003", 3)]
    assert pick_agent(agents, "city", T0) is agents[1]


def test_busy_ringing_unreachable_and_other_queue_agents_are_skipped() -> None:
    agents = [agent("7001", 50, AgentState.ON_CALL), agent("7002", 40, AgentState.RINGING),
              agent("7003", 30, reachable=False), agent("7004", 20, queues=("water",)),
              agent("7005", 1)]
    assert pick_agent(agents, "city", T0) is agents[4]


def test_no_ready_agent_returns_none() -> None:
    assert pick_agent([agent("7001", 1, AgentState.ON_CALL)], "city", T0) is None
    assert pick_agent([], "city", T0) is None


def test_resting_agent_is_skipped_until_rest_ends() -> None:
    agents = [agent("7001", 10), agent("7002", 1)]
    agents[0].rest_until = T0 + timedelta(seconds=10)
    assert pick_agent(agents, "city", T0) is agents[1]
    assert pick_agent(agents, "city", T0 + timedelta(seconds=10)) is agents[0]


def test_ties_go_to_lower_extension() -> None:
    agents = [agent("7003", 2), agent("7001", 2), agent("7002", 2)]
    assert pick_agent(agents, "city", T0) is agents[1]


def test_calls_spread_evenly_over_many_calls() -> None:
    agents = [agent(f"70{i:02d}", 0) for i in range(5)]
    counts = dict.fromkeys((a.id for a in agents), 0)
    now = T0
    for _ in range(100):
        now += timedelta(seconds=30)
        chosen = pick_agent(agents, "city", now)
        assert chosen is not None
        counts[chosen.id] += 1
        chosen.apply(AgentEvent.OFFER, now)
        chosen.apply(AgentEvent.ANSWER, now)
        chosen.apply(AgentEvent.HANGUP, now + timedelta(seconds=1))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_full_call_cycle_moves_agent_to_back_of_line() -> None:
    a = agent("7001", 10)
    a.apply(AgentEvent.OFFER, T0)
    assert a.state is AgentState.RINGING
    a.apply(AgentEvent.ANSWER, T0)
    assert a.state is AgentState.ON_CALL
    a.apply(AgentEvent.HANGUP, T0 + timedelta(minutes=2))
    assert a.state is AgentState.AVAILABLE
    assert a.idle_since == T0 + timedelta(minutes=2)


@pytest.mark.parametrize("state", list(AgentState))
@pytest.mark.parametrize("event", list(AgentEvent))
def test_every_pair_outside_the_table_is_refused_and_changes_nothing(
        state: AgentState, event: AgentEvent) -> None:
    a = agent("7001", 10, state)
    before = (a.state, a.idle_since, a.state_since)
    if (state, event) in TRANSITIONS:
        assert a.apply(event, T0) is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(IllegalTransition):
            a.apply(event, T0)
        assert (a.state, a.idle_since, a.state_since) == before
