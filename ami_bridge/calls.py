"""Call tracker: the engine's view of every live call, keyed by the caller channel's Uniqueid.

A call is created when the IVR session starts (FastAGI gives us the channel) and closed
exactly once, when Asterisk reports the caller channel's hang-up or when a state rebuild
after an AMI reconnect finds the channel gone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

_DIGITS = re.compile(r"[^0-9+*#]")
QUICK_ANSWER_S = 9.0  # 3 rings: the quick-answer threshold of REQUIREMENTS §9


def clean_number(raw: str | None) -> str:
    """Caller numbers are caller-controlled: keep dial characters only, bounded length."""
    return _DIGITS.sub("", raw or "")[:32] or "anonymous"


def now_utc() -> datetime:
    return datetime.now(UTC)


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

    @property
    def outcome(self) -> str:
        if self.overflowed:
            return "overflow"
        if self.answered_at is not None:
            return "answered"
        if self.queued_at is not None:
            return "abandoned_waiting"
        return "ended_in_ivr"


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

    def live(self) -> list[Call]:
        return list(self._calls.values())
