"""Operator (agent) states.

Theory of operation: one explicit table maps (state, event) to the next state. Anything not
in the table is illegal: `apply` raises and the agent is unchanged. Every accepted change
returns a `Change` record, which the service stores and publishes. Reachability (is the
softphone registered, is the device usable) is kept beside the state, not in it, because a
phone can drop and come back in any state; the distributor needs both.

  logged_out --login--> available --offer--> ringing --answer--> on_call --hangup--> wrap_up
  ringing --no_answer--> away(missed)     ringing --caller_gone|ring_failed--> available
  wrap_up --end_wrap_up (early, or at the maximum)--> available
  available|wrap_up|away --away(reason)--> away --back--> available
  available|wrap_up|away --logout--> logged_out
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class AgentState(Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    AWAY = "away"


class AgentEvent(Enum):
    LOGIN = "login"
    LOGOUT = "logout"
    OFFER = "offer"  # the distributor rings this agent
    ANSWER = "answer"  # the agent picked up
    NO_ANSWER = "no_answer"  # Asterisk's verdict: rang out unanswered, or busy
    CALLER_GONE = "caller_gone"  # the caller hung up while this agent's phone rang
    # the phone could not be rung, or the ring's outcome was lost with the AMI link
    RING_FAILED = "ring_failed"
    HANGUP = "hangup"  # the conversation ended
    END_WRAP_UP = "end_wrap_up"  # after-call work done (by the agent or at the maximum)
    AWAY = "away"  # break, meeting, ... (a reason is required)
    BACK = "back"


S, E = AgentState, AgentEvent
TRANSITIONS: dict[tuple[AgentState, AgentEvent], AgentState] = {
    (S.LOGGED_OUT, E.LOGIN): S.AVAILABLE,
    (S.AVAILABLE, E.LOGOUT): S.LOGGED_OUT,
    (S.WRAP_UP, E.LOGOUT): S.LOGGED_OUT,
    (S.AWAY, E.LOGOUT): S.LOGGED_OUT,
    (S.AVAILABLE, E.OFFER): S.RINGING,
    (S.RINGING, E.ANSWER): S.ON_CALL,
    (S.RINGING, E.NO_ANSWER): S.AWAY,
    (S.RINGING, E.CALLER_GONE): S.AVAILABLE,
    (S.RINGING, E.RING_FAILED): S.AVAILABLE,
    (S.ON_CALL, E.HANGUP): S.WRAP_UP,
    (S.WRAP_UP, E.END_WRAP_UP): S.AVAILABLE,
    (S.AVAILABLE, E.AWAY): S.AWAY,
    (S.WRAP_UP, E.AWAY): S.AWAY,
    (S.AWAY, E.AWAY): S.AWAY,  # a new reason
    (S.AWAY, E.BACK): S.AVAILABLE,
}
MISSED = "missed"


class IllegalTransition(Exception):
    def __init__(self, agent_id: str, state: AgentState, event: AgentEvent) -> None:
        super().__init__(f"agent {agent_id}: {event.value} is not allowed in {state.value}")
        self.state = state
        self.event = event


@dataclass(frozen=True)
class Change:
    agent_id: str
    event: AgentEvent
    old: AgentState
    new: AgentState
    reason: str | None
    at: datetime


@dataclass
class Agent:
    id: str
    queues: tuple[str, ...]
    idle_since: datetime  # when the agent last became available: the fairness clock
    state: AgentState = AgentState.AVAILABLE
    reachable: bool = False
    state_since: datetime | None = None
    reason: str | None = None  # why away

    def apply(self, event: AgentEvent, now: datetime, reason: str | None = None) -> Change:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise IllegalTransition(self.id, self.state, event)
        if event is AgentEvent.AWAY and not reason:
            raise ValueError("going away needs a reason")
        old = self.state
        self.state = new
        self.state_since = now
        self.reason = (MISSED if event is AgentEvent.NO_ANSWER else reason) \
            if new is AgentState.AWAY else None
        # A ring that came to nothing through no doing of the agent keeps their place.
        if new is AgentState.AVAILABLE and event not in (AgentEvent.CALLER_GONE,
                                                         AgentEvent.RING_FAILED):
            self.idle_since = now
        return Change(self.id, event, old, new, self.reason, now)
