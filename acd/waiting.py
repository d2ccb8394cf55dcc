"""Waiting lines: one per queue, kept in service order (priority, then arrival)."""

from __future__ import annotations

import bisect

from core.calls import Call

from .distributor import call_order


class WaitingLines:
    def __init__(self, queues: list[str]) -> None:
        self.lines: dict[str, list[Call]] = {q: [] for q in queues}

    def add(self, call: Call) -> None:
        """Insert by order; a call put back after a missed ring regains its place."""
        assert call.queue is not None
        line = self.lines[call.queue]
        keys = [call_order(c) for c in line]
        line.insert(bisect.bisect(keys, call_order(call)), call)

    def remove(self, call: Call) -> bool:
        line = self.lines.get(call.queue or "", [])
        if call in line:
            line.remove(call)
            return True
        return False

    def position(self, call: Call) -> int | None:
        line = self.lines.get(call.queue or "", [])
        return line.index(call) + 1 if call in line else None

    def counts(self) -> dict[str, int]:
        return {q: len(line) for q, line in self.lines.items()}
