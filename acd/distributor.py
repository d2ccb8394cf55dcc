"""Who takes the next call: the ready operator who has been idle longest.

Pure: it sees agents, a queue name and the time, and returns a choice; it never rings anyone.
Ties (same idle time) go to the lower extension so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .agents import Agent, AgentState


def is_ready(agent: Agent, queue: str, now: datetime) -> bool:
    return (agent.state is AgentState.AVAILABLE and agent.reachable and queue in agent.queues
            and (agent.rest_until is None or agent.rest_until <= now))


def pick_agent(agents: Iterable[Agent], queue: str, now: datetime) -> Agent | None:
    ready = [a for a in agents if is_ready(a, queue, now)]
    if not ready:
        return None
    return min(ready, key=lambda a: (a.idle_since, a.id))
