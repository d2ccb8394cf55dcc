"""Who takes the next call, and which call goes first.

Pure: it sees agents, waiting lines and returns choices; it never rings anyone.
- Agent: the ready one (available, phone reachable, serving the queue) idle longest; ties
  go to the lower extension so the result is deterministic.
- Call: across the queues an agent could serve, the highest priority first, then the one
  that has waited longest (arrival order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from core.calls import Call

from .agents import Agent, AgentState


def is_ready(agent: Agent, queue: str) -> bool:
    return agent.state is AgentState.AVAILABLE and agent.reachable and queue in agent.queues


def pick_agent(agents: Iterable[Agent], queue: str) -> Agent | None:
    ready = [a for a in agents if is_ready(a, queue)]
    if not ready:
        return None
    return min(ready, key=lambda a: (a.idle_since, a.id))


def call_order(call: Call) -> tuple[int, float, str]:
    assert call.queued_at is not None
    return (-call.priority, call.queued_at.timestamp(), call.id)


def _servable(call: Call) -> bool:
    return True


def next_assignment(lines: Mapping[str, Sequence[Call]], agents: Sequence[Agent],
                    servable: Callable[[Call], bool] = _servable) -> tuple[Call, Agent] | None:
    """The best waiting call that some ready agent can take, with that agent. A call that
    cannot be served yet (a callback before its retry, or while its service is closed) keeps
    its place and lets the next one through."""
    heads = sorted((head for line in lines.values()
                    if (head := next((c for c in line if servable(c)), None)) is not None),
                   key=call_order)
    for call in heads:
        assert call.queue is not None
        agent = pick_agent(agents, call.queue)
        if agent is not None:
            return call, agent
    return None
