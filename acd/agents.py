"""Operator (agent) states.

Theory of operation: one explicit table maps (state, event) to the next state. Anything not
in the table is illegal: `apply` raises and the agent is unchanged. Reachability (is the
softphone registered / the device not unavailable) is tracked beside the state, not in it,
because a phone can drop and come back in any state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class AgentState(Enum):
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"


class AgentEvent(Enum):
    OFFER = "offer"  # the distributor rings this agent
    ANSWER = "answer"  # the agent picked up
    NO_ANSWER = "no_answer"  # ring timeout, busy or unreachable
    CALLER_GONE = "caller_gone"  # the caller hung up while this agent's phone rang
    HANGUP = "hangup"  # the conversation ended


TRANSITIONS: dict[tuple[AgentState, AgentEvent], AgentState] = {
    (AgentState.AVAILABLE, AgentEvent.OFFER): AgentState.RINGING,
    (AgentState.RINGING, AgentEvent.ANSWER): AgentState.ON_CALL,
    (AgentState.RINGING, AgentEvent.NO_ANSWER): AgentState.AVAILABLE,
    (AgentState.RINGING, AgentEvent.CALLER_GONE): AgentState.AVAILABLE,
    (AgentState.ON_CALL, AgentEvent.HANGUP): AgentState.AVAILABLE,
}


class IllegalTransition(Exception):
    def __init__(self, agent_id: str, state: AgentState, event: AgentEvent) -> None:
        super().__init__(f"agent {agent_id}: {event.value} is not allowed in {state.value}")
        self.state = state
        self.event = event


@dataclass
class Agent:
    id: str
    queues: tuple[str, ...]
    idle_since: datetime
    state: AgentState = AgentState.AVAILABLE
    reachable: bool = False
    state_since: datetime | None = None
    # after a missed ring the operator is not rung again before this time, so an unreachable
    # phone is not hammered and the next operator gets the call
    rest_until: datetime | None = None

    def apply(self, event: AgentEvent, now: datetime) -> AgentState:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise IllegalTransition(self.id, self.state, event)
        self.state = new
        self.state_since = now
        if new is AgentState.AVAILABLE:
            # a missed ring also moves the agent to the back: the next call tries someone else
            self.idle_since = now
        return new
