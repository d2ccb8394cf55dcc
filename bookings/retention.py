"""Bookings kept retention_days after their session, then purged on a timer with a
deletion report (a 0600 file listing the booking numbers, and a deletion_reports row with
its checksum), as recordings are."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from pathlib import Path

from core.files import write_durably
from store.models import DeletionReport

from .service import BookingService, Channel, Purge, Who
from .settings import BookingSettings

log = logging.getLogger(__name__)
KIND = "bookings"


async def purge(service: BookingService, settings: BookingSettings, state_dir: Path,
                actor: str = "retention") -> tuple[Purge, Path | None]:
    result = await service.purge(settings.retention_days, Who(actor, "engine", Channel.SYSTEM))
    if result.bookings == 0:
        return result, None
    folder = settings.reports(state_dir)
    stamp = result.at.strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{KIND}.json"
    data = json.dumps({"kind": KIND, "at": result.at.isoformat(), "actor": actor,
                       "cutoff": result.cutoff.isoformat(), "bookings": result.bookings,
                       "numbers": result.numbers}, indent=1).encode()

    def write() -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_durably(path, data, mode=0o600)
    await asyncio.to_thread(write)
    await service.db.add(DeletionReport(
        at=result.at, kind=KIND, actor=actor, cutoff=result.cutoff, calls=0, recordings=0,
        bytes=0, report_file=str(path), report_sha256=hashlib.sha256(data).hexdigest()),
        what="booking deletion report")
    log.info("bookings purge: %d booking(s) before %s; report %s", result.bookings,
             result.cutoff.isoformat(), path)
    return result, path


class PurgeJob:
    """The purge at start, then every purge_interval_s, until stopped."""

    def __init__(self, service: BookingService, settings: BookingSettings,
                 state_dir: Path) -> None:
        self.service, self.settings, self.state_dir = service, settings, state_dir
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await purge(self.service, self.settings, self.state_dir)
            except Exception:  # the next tick tries again; the rows stay until then
                log.exception("bookings purge failed")
            await asyncio.sleep(self.settings.purge_interval_s)
