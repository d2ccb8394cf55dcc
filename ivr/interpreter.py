"""The IVR interpreter: a pure state machine walking one flow for one call.

Theory of operation. The interpreter never touches a channel, a socket, a file or the real
clock. `start()` and `feed()` return the next instruction for the adapter — say something
(`Say`), say something and collect a key (`Collect`), or finish (`Enqueue`, `TransferTo`,
`End`) — and the adapter reports what happened (`Played`, with the key that interrupted it,
or `Digits`, "" for a timeout). A booking node asks the adapter to run its own pure
dialogue (`RunBooking`, ivr/booking_dialogue.py); `Played()` then goes on. Everything the
flow may ask of the outside world (hours and overrides, the event board, prompt files) comes
from a `World` snapshot taken when the call started, and the time from an injected clock. So
live calls over FastAGI and dry runs (`madoguchi flows simulate`, the tests) run exactly the
same code, and a call keeps the flow version it started on even when a reload happens
mid-call.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from .flow import (
    BookingNode,
    Events,
    Flow,
    FlowNode,
    Goto,
    Hangup,
    Menu,
    Play,
    Schedule,
    SetLanguage,
    SetVars,
    ToQueue,
    Transfer,
)
from .prompts import Audio
from .schedule import ScheduleState

_MAX_STEPS = 200  # nodes passed without saying anything: a bug in a flow, end the call
_MAX_INSTRUCTIONS = 300  # a caller kept this long in menus is ended politely
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class World(Protocol):
    """What a flow may ask of the outside world: a frozen view for one call."""

    @property
    def tz(self) -> ZoneInfo: ...

    def prompt(self, key: str, language: str) -> Audio: ...

    def schedule_state(self, service: str, at: datetime) -> ScheduleState: ...

    def override_message(self, service: str, language: str) -> Audio | None: ...

    def board(self, at: datetime, language: str) -> tuple[Audio, ...]: ...


@dataclass(frozen=True)
class CallInfo:
    caller: str
    did: str
    service: str


# ---- instructions (interpreter -> adapter) ---------------------------------------------------

@dataclass(frozen=True)
class Say:
    audio: tuple[Audio, ...]
    barge_in: bool = False  # report a key that interrupts the playback


@dataclass(frozen=True)
class Collect:
    audio: tuple[Audio, ...]
    timeout_ms: int
    max_digits: int = 1


@dataclass(frozen=True)
class Enqueue:
    queue: str
    topic: str | None = None
    priority: int = 0
    survey: bool = False  # the caller hears the post-call survey when the operator hangs up


@dataclass(frozen=True)
class TransferTo:
    number: str
    dial: str


@dataclass(frozen=True)
class End:
    reason: str


@dataclass(frozen=True)
class RunBooking:
    """Run the booking dialogue (ivr/booking_dialogue.py) in the call's language, then feed
    `Played()` to go on at the node's `next`."""

    category: str
    max_events: int
    language: str


Instruction = Say | Collect | Enqueue | TransferTo | End | RunBooking


# ---- outcomes (adapter -> interpreter) -------------------------------------------------------

@dataclass(frozen=True)
class Played:
    digit: str = ""  # the key that interrupted a barge-in playback


@dataclass(frozen=True)
class Digits:
    digits: str  # "" means timeout


Outcome = Played | Digits


@dataclass
class Interpreter:
    flow: Flow
    world: World
    call: CallInfo
    clock: Callable[[], datetime]
    language: str = "ja"
    path: list[str] = field(default_factory=list)
    vars: dict[str, str] = field(default_factory=dict)
    _node: str = ""
    _attempts: int = 0
    _typeahead: str = ""
    _then: str | None = None  # where a schedule node goes after its override message
    _count: int = 0

    # ---- public --------------------------------------------------------------------------
    def start(self) -> Instruction:
        return self._enter(self.flow.start)

    def feed(self, outcome: Outcome) -> Instruction:
        self._count += 1
        if self._count > _MAX_INSTRUCTIONS:
            return End("too long in the IVR")
        node = self.flow.nodes[self._node]
        if isinstance(outcome, Played):
            if isinstance(node, Play):
                if node.barge_in and outcome.digit:
                    self._typeahead = outcome.digit
                return self._enter(node.next)
            if isinstance(node, Events):
                return self._enter(node.next)
            if isinstance(node, Schedule) and self._then is not None:
                target, self._then = self._then, None
                return self._enter(target)
            if isinstance(node, Transfer):
                return TransferTo(node.to, node.dial)
            if isinstance(node, Hangup):
                return End("hangup")
            if isinstance(node, BookingNode):
                return self._enter(node.next)
        if isinstance(node, Menu) and isinstance(outcome, Digits):
            return self._choose(node, outcome.digits)
        raise ValueError(f"outcome {outcome!r} does not fit node {node.id!r}")

    def variables(self) -> dict[str, str]:
        now = self.clock().astimezone(self.world.tz)
        return {"topic": "", "schedule": "", **self.vars,
                "caller": self.call.caller, "did": self.call.did, "service": self.call.service,
                "language": self.language, "time": now.strftime("%H:%M"),
                "date": now.date().isoformat(), "weekday": _WEEKDAYS[now.weekday()]}

    # ---- internals -----------------------------------------------------------------------
    def _choose(self, node: Menu, digits: str) -> Instruction:
        target = node.choices.get(digits) if digits else None
        if target is not None:
            return self._enter(target)
        self._attempts += 1
        if self._attempts <= node.retries:
            extra = node.timeout_say if digits == "" else node.invalid_say
            before = (self._say(extra),) if extra else ()
            return Collect((*before, self._say(node.say)), node.timeout * 1000)
        return self._enter(node.on_timeout if digits == "" else node.on_invalid)

    def _enter(self, node_id: str) -> Instruction:
        for _ in range(_MAX_STEPS):
            self._node = node_id
            self._attempts = 0
            self.path.append(node_id)
            node = self.flow.nodes[node_id]
            step = self._step(node)
            if isinstance(step, str):
                node_id = step
                continue
            return step
        return End("loop")

    def _step(self, node: FlowNode) -> Instruction | str:
        """An instruction, or the id of the next node for nodes that say nothing."""
        if isinstance(node, SetLanguage):
            self.language = node.language
            return node.next
        if isinstance(node, SetVars):
            values = self.variables()
            for name, template in node.values.items():
                value = _render(template, values)
                if name == "language":
                    self.language = value
                else:
                    self.vars[name] = value
                values[name] = value
            return node.next
        if isinstance(node, Goto):
            if node.switch is not None:
                value = self.variables().get(node.switch, "")
                if value in node.cases:
                    return node.cases[value]
            return node.next
        if isinstance(node, Schedule):
            state = self.world.schedule_state(node.service, self.clock())
            self.vars["schedule"] = state.value
            target = node.branches[state.value]
            if state is ScheduleState.EMERGENCY:
                message = self.world.override_message(node.service, self.language)
                if message is not None:
                    self._then = target
                    return Say((message,))
            return target
        if isinstance(node, Play):
            return Say((self._say(node.say),), barge_in=node.barge_in)
        if isinstance(node, Menu):
            if self._typeahead:
                digit, self._typeahead = self._typeahead, ""
                return self._choose(node, digit)
            return Collect((self._say(node.say),), node.timeout * 1000)
        if isinstance(node, Events):
            items = self.world.board(self.clock(), self.language)
            if items:
                intro = (self._say(node.intro),) if node.intro else ()
                return Say((*intro, *items))
            if node.empty:
                return Say((self._say(node.empty),))
            return node.next
        if isinstance(node, BookingNode):
            return RunBooking(node.category, node.max_events, self.language)
        if isinstance(node, ToQueue):
            values = self.variables()
            topic = _render(node.topic, values) if node.topic else values["topic"]
            priority = node.priority or int(values.get("priority") or 0)
            return Enqueue(node.queue, topic if _TOPIC.match(topic or "") else None, priority,
                           node.survey)
        if isinstance(node, Transfer):
            if node.say:
                return Say((self._say(node.say),))
            return TransferTo(node.to, node.dial)
        if node.say:
            return Say((self._say(node.say),))
        return End("hangup")

    def _say(self, key: str) -> Audio:
        return self.world.prompt(key, self.language)


def _render(template: str, values: Mapping[str, str]) -> str:
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if name:
            out.append(values.get(name, ""))
    return "".join(out)
