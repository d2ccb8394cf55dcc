"""The call, the center's one domain object, and the tracker of live calls keyed by the
caller channel's Uniqueid.

A call is created when the IVR session starts (FastAGI gives us the channel) and closed
exactly once, when Asterisk reports the caller channel's hang-up or when a state rebuild
after an AMI reconnect finds the channel gone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .clock import QUICK_ANSWER_S, now_utc

_DIGITS = re.compile(r"[^0-9+*#]")
__all__ = ["QUICK_ANSWER_S", "Call", "CallTracker", "Outcome", "TransferStep", "clean_number",
           "now_utc"]


class Outcome(StrEnum):
    """How a call ended, as stored in call records and counted by the KPIs."""

    ANSWERED = "answered"  # an operator answered
    ABANDONED_WAITING = "abandoned_waiting"  # hung up in the waiting line
    ENDED_IN_IVR = "ended_in_ivr"  # never reached the waiting line (self-service, closed...)
    OVERFLOW = "overflow"  # waited past the queue's maximum and was sent elsewhere
    RECOVERED = "recovered"  # rebuilt from a recording file after a crash
    # left the waiting line for a callback that keeps their place (acd/callbacks.py)
    CALLBACK_REQUESTED = "callback_requested"
    CALLBACK = "callback"  # the center's call back to a citizen who asked for it


# the calls that reached the waiting line: the denominator of the answer rate. A caller who
# asked for a callback was offered and not answered live; the callback itself is our own
# outgoing call, counted apart (kpi: callbacks), never a second offer.
OFFERED_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.ABANDONED_WAITING, Outcome.OVERFLOW,
                              Outcome.CALLBACK_REQUESTED})


def clean_number(raw: str | None) -> str:
    """Caller numbers are caller-controlled: keep dial characters only, bounded length."""
    return _DIGITS.sub("", raw or "")[:32] or "anonymous"


@dataclass(frozen=True)
class TransferStep:
    """One hand-over of the call: who passed it, to what, how and when."""

    from_agent: str | None
    to: str
    kind: str  # "blind" | "attended"
    at: datetime


@dataclass
class Call:
    uniqueid: str
    channel: str
    service: str
    did: str
    caller: str
    offered_at: datetime
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    language: str | None = None
    flow_path: list[str] = field(default_factory=list)
    queue: str | None = None
    queued_at: datetime | None = None
    ring_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    agent_id: str | None = None
    recording: str | None = None  # file name relative to the recordings folder
    topic: str | None = None  # set by the IVR's queue node
    priority: int = 0  # higher is served first within the waiting line
    flow_version: str | None = None  # the IVR flow set the call started on
    transfers: list[TransferStep] = field(default_factory=list)
    overflowed: bool = False  # waited past the queue's maximum and was sent elsewhere
    # the operator hung up and the caller stayed on for the post-call survey: talk ends here
    operator_left_at: datetime | None = None
    # the caller pressed the callback key and left the line with their place kept
    callback_requested_at: datetime | None = None
    # this is a callback: the id of the inbound call that asked for it
    callback_of: str | None = None

    @property
    def time_to_answer(self) -> float | None:
        """Seconds from entering the waiting line to an operator's answer.

        This is the clock of the city's quick-answer KPI (即応率: answered within 3 rings,
        9 s, ÷ answered): it starts when the caller leaves the IVR for the queue, because
        time spent choosing in the menu is the caller's, not waiting for the center.
        None for calls no operator answered."""
        if self.answered_at is None or self.queued_at is None:
            return None
        return (self.answered_at - self.queued_at).total_seconds()

    # ---- transitions: the only ways production code moves a call on ------------------------
    def enter_queue(self, at: datetime) -> datetime:
        """The caller left the IVR for the waiting line (kept if already set: a re-queue);
        returns the time they entered it."""
        if self.queued_at is None:
            self.queued_at = at
        return self.queued_at

    def answer(self, agent_id: str, at: datetime) -> None:
        self.answered_at = at
        self.agent_id = agent_id

    def overflow(self) -> None:
        self.overflowed = True

    def request_callback(self, at: datetime) -> None:
        self.callback_requested_at = at

    def operator_left(self, at: datetime) -> None:
        """The operator hung up first and the caller stays on (the post-call survey): the
        conversation, and so the talk time, ended here, not at the caller's hang-up."""
        if self.answered_at is not None and self.operator_left_at is None:
            self.operator_left_at = at

    @property
    def talk_until(self) -> datetime | None:
        """When the conversation ended: the operator's leaving, else the hang-up."""
        return self.operator_left_at or self.ended_at

    @property
    def outcome(self) -> Outcome:
        """Overflow wins (it may follow a long wait), then an answer, then the waiting line."""
        if self.callback_of is not None:
            return Outcome.CALLBACK
        if self.overflowed:
            return Outcome.OVERFLOW
        if self.answered_at is not None:
            return Outcome.ANSWERED
        if self.callback_requested_at is not None:
            return Outcome.CALLBACK_REQUESTED
        if self.queued_at is not None:
            return Outcome.ABANDONED_WAITING
        return Outcome.ENDED_IN_IVR


class CallTracker:
    def __init__(self, clock: Callable[[], datetime] = now_utc) -> None:
        self._calls: dict[str, Call] = {}
        self.clock = clock

    def offer(self, uniqueid: str, channel: str, service: str, did: str, caller: str) -> Call:
        call = Call(uniqueid, channel, service, did, clean_number(caller), self.clock())
        self._calls[uniqueid] = call
        return call

    def adopt(self, call: Call) -> None:
        """Track a call rebuilt from Asterisk after a restart."""
        self._calls[call.uniqueid] = call

    def get(self, uniqueid: str) -> Call | None:
        return self._calls.get(uniqueid)

    def end(self, uniqueid: str) -> Call | None:
        """Close a call once; a second hang-up report for it returns None."""
        call = self._calls.pop(uniqueid, None)
        if call is not None:
            call.ended_at = self.clock()
        return call

    def forget(self, uniqueid: str) -> Call | None:
        """Stop tracking a call that leaves no record (a callback the citizen did not answer)."""
        return self._calls.pop(uniqueid, None)

    def live(self) -> list[Call]:
        return list(self._calls.values())
