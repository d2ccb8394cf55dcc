"""Who takes the next call: the ready operator who has been idle longest.

Pure: it sees agents and a queue name and returns a choice; it never rings anyone.
Ties (same idle time) go to the lower extension so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

from .agents import Agent, AgentState


def pick_agent(agents: Iterable[Agent], queue: str) -> Agent | None:
    ready = [a for a in agents
             if a.state is AgentState.AVAILABLE and a.reachable and queue in a.queues]
    if not ready:
        return None
    return min(ready, key=lambda a: (a.idle_since, a.id))
