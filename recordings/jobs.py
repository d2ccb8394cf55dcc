"""Background jobs run by the engine: the reconciler (at start-up, then on a timer) and the
retention purge (on a timer). Their results are metrics and log lines."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from .lifecycle import purge
from .reconcile import PROBLEM_KINDS, Reconciler, ReconcileReport
from .service import RecordingService

log = logging.getLogger(__name__)


class RecordingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.problems = Gauge("madoguchi_recordings_problems",
                              "Recording files or rows the reconciler could not repair",
                              ["kind"], registry=registry)
        for kind in PROBLEM_KINDS:
            self.problems.labels(kind).set(0)
        self.repaired = Counter("madoguchi_recordings_repaired",
                                "Recording files or rows repaired by the reconciler",
                                registry=registry)
        self.reconciled = Counter("madoguchi_recordings_reconcile_runs",
                                  "Reconciler passes completed", registry=registry)
        self.purged = Counter("madoguchi_recordings_purged",
                              "Recordings deleted by the retention purge", registry=registry)
        self.job_errors = Counter("madoguchi_recordings_job_errors",
                                  "Reconciler or purge passes that failed", ["job"],
                                  registry=registry)


class RecordingJobs:
    def __init__(self, service: RecordingService, registry: CollectorRegistry,
                 live_call_ids: Callable[[], Iterable[str]]) -> None:
        self.service = service
        self.metrics = RecordingMetrics(registry)
        self.reconciler = Reconciler(service, live_call_ids)
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()  # one pass at a time: a purge never races a repair

    async def reconcile(self) -> ReconcileReport:
        report = await self.reconciler.run()
        for kind, n in report.counts().items():
            self.metrics.problems.labels(kind).set(n)
        self.metrics.repaired.inc(len(report.repaired))
        self.metrics.reconciled.inc()
        return report

    async def purge(self) -> None:
        deletion = await purge(self.service)
        self.metrics.purged.inc(len(deletion.recordings))

    async def _every(self, name: str, interval: float,
                     job: Callable[[], Coroutine[Any, Any, object]]) -> None:
        while True:
            try:
                async with self._lock:
                    await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is retried at the next tick, never fatal
                self.metrics.job_errors.labels(name).inc()
                log.exception("recordings %s pass failed", name)
            await asyncio.sleep(interval)

    def start(self) -> None:
        s = self.service.settings
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every("reconcile", s.reconcile_interval_s, self.reconcile)),
            loop.create_task(self._every("purge", s.purge_interval_s, self.purge)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
