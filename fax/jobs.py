"""The FAX feature's background work in the engine: the spool indexed and sent jobs polled
(at start-up, then on a timer), the retention purge (on a timer)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from .indexer import Indexer
from .lifecycle import purge
from .sending import Outbox
from .service import FaxService

log = logging.getLogger(__name__)


class FaxMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.indexed = Counter("madoguchi_fax_indexed", "Receptions indexed from the spool",
                               registry=registry)
        self.problems = Gauge("madoguchi_fax_spool_problems", "Spool files the last indexing "
                              "pass could not index cleanly (odd names, values or images)",
                              registry=registry)
        self.purged = Counter("madoguchi_fax_purged", "FAXes deleted by the retention purge",
                              registry=registry)
        self.job_errors = Counter("madoguchi_fax_job_errors", "FAX indexing, polling or purge "
                                  "passes that failed", ["job"], registry=registry)


class FaxJobs:
    def __init__(self, service: FaxService, outbox: Outbox,
                 registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.outbox = outbox
        self.indexer = Indexer(service)
        self.metrics = FaxMetrics(registry)
        self._tasks: list[asyncio.Task[None]] = []

    async def index(self) -> None:
        report = await self.indexer.run()
        self.metrics.indexed.inc(len(report.indexed))
        self.metrics.problems.set(len(report.problems))
        await self.outbox.poll()

    async def purge(self) -> None:
        deletion = await purge(self.service)
        self.metrics.purged.inc(len(deletion.items))

    async def _every(self, name: str, interval: float,
                     job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is retried at the next tick, never fatal
                self.metrics.job_errors.labels(name).inc()
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
