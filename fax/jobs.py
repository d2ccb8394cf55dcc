"""The FAX feature's background work in the engine: the spool indexed and sent jobs polled
(at start-up, then on a timer), the retention purge (on a timer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .indexer import Indexer
from .lifecycle import purge
from .sending import Outbox
from .service import FaxService

log = logging.getLogger(__name__)


class FaxJobs:
    def __init__(self, service: FaxService, outbox: Outbox) -> None:
        self.service = service
        self.outbox = outbox
        self.indexer = Indexer(service)
        self._tasks: list[asyncio.Task[None]] = []

    async def index(self) -> None:
        await self.indexer.run()
        await self.outbox.poll()

    async def purge(self) -> None:
        await purge(self.service)

    async def _every(self, name: str, interval: float,
                     job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is retried at the next tick, never fatal
                log.exception("FAX %s pass failed", name)
            await asyncio.sleep(interval)

    def start(self) -> None:
        c = self.service.config
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._every("index", c.index_interval_s, self.index)),
                       loop.create_task(self._every("purge", c.purge_interval_s, self.purge))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.outbox.stop()  # attempts being dialled; their results are polled later
