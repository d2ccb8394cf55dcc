"""In-process publish/subscribe for live state (operator changes, waiting counts).

Subscribers get bounded queues: a slow reader (a stalled browser) loses its oldest events
instead of growing memory or slowing the call path."""

from __future__ import annotations

import asyncio
from typing import Any

Message = dict[str, Any]


class Bus:
    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._subscribers: set[asyncio.Queue[Message]] = set()

    def subscribe(self) -> asyncio.Queue[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue(self.maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Message]) -> None:
        self._subscribers.discard(queue)

    def publish(self, message: Message) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)
