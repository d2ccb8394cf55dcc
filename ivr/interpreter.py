"""The IVR interpreter: a pure state machine walking one flow for one call.

It never touches a channel. `start()` and `feed()` return the next instruction for the
adapter (play a prompt, collect digits, send to a queue, hang up); the adapter reports what
happened (played, digits or a timeout) through `feed()`. Live calls and dry runs share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .flow import Flow, Hangup, Menu, Play, SetLanguage, ToQueue

_MAX_STEPS = 200  # a flow that loops this long without input is a bug: end the call


@dataclass(frozen=True)
class PlayPrompt:
    prompt: str
    language: str


@dataclass(frozen=True)
class Collect:
    prompt: str
    language: str
    timeout_ms: int
    max_digits: int = 1


@dataclass(frozen=True)
class Enqueue:
    queue: str


@dataclass(frozen=True)
class End:
    reason: str


Instruction = PlayPrompt | Collect | Enqueue | End


@dataclass(frozen=True)
class Played:
    pass


@dataclass(frozen=True)
class Digits:
    digits: str  # "" means timeout


Outcome = Played | Digits


@dataclass
class Interpreter:
    flow: Flow
    language: str = "ja"
    path: list[str] = field(default_factory=list)
    _node: str = ""
    _attempts: int = 0

    def start(self) -> Instruction:
        return self._enter(self.flow.start)

    def feed(self, outcome: Outcome) -> Instruction:
        node = self.flow.nodes[self._node]
        if isinstance(node, Play) and isinstance(outcome, Played):
            return self._enter(node.next)
        if isinstance(node, Menu) and isinstance(outcome, Digits):
            target = node.choices.get(outcome.digits)
            if target is not None:
                return self._enter(target)
            self._attempts += 1
            if self._attempts <= node.retries:
                return self._instruction(node)
            return self._enter(node.on_timeout if outcome.digits == "" else node.on_invalid)
        raise ValueError(f"outcome {outcome!r} does not fit node {node.id!r}")

    def _enter(self, node_id: str) -> Instruction:
        for _ in range(_MAX_STEPS):
            self._node = node_id
            self._attempts = 0
            self.path.append(node_id)
            node = self.flow.nodes[node_id]
            if isinstance(node, SetLanguage):
                self.language = node.language
                node_id = node.next
                continue
            return self._instruction(node)
        return End("loop")

    def _instruction(self, node: Play | Menu | ToQueue | Hangup | SetLanguage) -> Instruction:
        if isinstance(node, Play):
            return PlayPrompt(node.prompt, self.language)
        if isinstance(node, Menu):
            return Collect(node.prompt, self.language, node.timeout * 1000)
        if isinstance(node, ToQueue):
            return Enqueue(node.queue)
        return End("hangup")
