"""Callbacks (virtual hold): a waiting caller asks to be called back and hangs up, keeping
their place in line. Pure: states, transitions and who may be served; no I/O.

The callback waits in the caller's waiting line as a virtual caller with the caller's own
entry time (`waiting_call`), so the distributor serves it in the same order as everyone
(priority, then time queued): never ahead of a caller who entered earlier. It is served only
when an operator is free, and an operator rung for it is busy until it ends, so there are
never more callbacks in progress than operators who were idle to take them.

    pending ──dial──▶ dialing ──answered──▶ done
       ▲                 │ └──not_answered──▶ pending (after retry_delay) | failed (last try)
       └──missed/lost────┘        (the operator did not answer, or the engine lost the leg)
    pending ──expire──▶ expired (the service is closed and its policy says expire)
    pending ──cancel──▶ cancelled (a supervisor, e.g. at the citizen's request)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.calls import Call
from core.settings import CallbackPolicy

# a virtual caller's uniqueid: never an Asterisk Uniqueid (those are digits and a dot)
VIRTUAL_PREFIX = "callback:"


class CallbackState(StrEnum):
    PENDING = "pending"  # in line, waiting for its turn (or its next attempt)
    DIALING = "dialing"  # an operator is rung, then the citizen dialled
    DONE = "done"  # the citizen answered and spoke to the operator
    FAILED = "failed"  # every attempt went unanswered
    EXPIRED = "expired"  # the service closed before it was served (policy: expire)
    CANCELLED = "cancelled"  # a supervisor cancelled it (the citizen asked, or a duplicate)


class CallbackEvent(StrEnum):
    DIAL = "dial"
    ANSWERED = "answered"
    NOT_ANSWERED = "not_answered"
    MISSED = "missed"  # the operator's phone was not answered or could not ring
    LOST = "lost"  # the engine restarted or lost AMI while dialling: the try does not count
    EXPIRE = "expire"
    CANCEL = "cancel"


OPEN_STATES = frozenset({CallbackState.PENDING, CallbackState.DIALING})
TRANSITIONS: dict[tuple[CallbackState, CallbackEvent], CallbackState] = {
    (CallbackState.PENDING, CallbackEvent.DIAL): CallbackState.DIALING,
    (CallbackState.PENDING, CallbackEvent.EXPIRE): CallbackState.EXPIRED,
    (CallbackState.PENDING, CallbackEvent.CANCEL): CallbackState.CANCELLED,
    (CallbackState.DIALING, CallbackEvent.ANSWERED): CallbackState.DONE,
    (CallbackState.DIALING, CallbackEvent.NOT_ANSWERED): CallbackState.PENDING,  # or FAILED
    (CallbackState.DIALING, CallbackEvent.MISSED): CallbackState.PENDING,
    (CallbackState.DIALING, CallbackEvent.LOST): CallbackState.PENDING,
}


class IllegalCallbackTransition(Exception):
    pass


@dataclass
class Callback:
    id: str  # 32 hex, ours
    call_id: str  # the inbound call that asked
    service: str
    queue: str
    number: str  # checked against the transfer rules before it was accepted
    language: str | None
    topic: str | None
    priority: int
    queued_at: datetime  # the caller's place in line, kept
    requested_at: datetime
    state: CallbackState = CallbackState.PENDING
    attempts: int = 0  # times the citizen was dialled
    not_before: datetime | None = None
    last_status: str = ""  # Dial's DIALSTATUS of the last attempt
    agent_id: str | None = None
    result_call_id: str | None = None

    def apply(self, event: CallbackEvent, at: datetime, policy: CallbackPolicy,
              status: str = "") -> CallbackState:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise IllegalCallbackTransition(f"callback {self.id}: {event.value} in "
                                            f"{self.state.value}")
        if event is CallbackEvent.NOT_ANSWERED:
            self.attempts += 1
            self.last_status = status[:16]
            if self.attempts >= policy.attempts:
                new = CallbackState.FAILED
            else:
                self.not_before = at + timedelta(seconds=policy.retry_delay)
        elif event is CallbackEvent.ANSWERED:
            self.attempts += 1
            self.last_status = status[:16]
        self.state = new
        return new

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def waiting_call(cb: Callback) -> Call:
    """The callback as a caller in the waiting line: the inbound caller's place and facts,
    no channel."""
    return Call(uniqueid=VIRTUAL_PREFIX + cb.id, channel="", service=cb.service, did="",
                caller=cb.number, offered_at=cb.requested_at, id=cb.id,
                language=cb.language, queue=cb.queue, queued_at=cb.queued_at,
                topic=cb.topic, priority=cb.priority)


def is_virtual(call: Call) -> bool:
    return call.uniqueid.startswith(VIRTUAL_PREFIX)


def servable(cb: Callback, now: datetime, service_open: bool) -> bool:
    """May this callback be served now: pending, its retry delay over, the service open."""
    return (cb.state is CallbackState.PENDING and service_open
            and (cb.not_before is None or cb.not_before <= now))


def should_offer(policy: CallbackPolicy | None, waited_s: float,
                 expected_wait_s: float | None) -> bool:
    """The waiting caller hears the callback offer after `after` seconds, or at once when the
    expected wait is at least `min_expected_wait`."""
    if policy is None:
        return False
    if waited_s >= policy.after:
        return True
    return expected_wait_s is not None and expected_wait_s >= policy.min_expected_wait
