"""FAX retention purge and full erasure, by the recordings' rules: what goes is listed
first, files are overwritten and removed before their rows (a crash leaves rows without
files, which the next purge finishes), and a deletion report (file and row, counts and
checksums only) is written last with what was actually removed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Result, delete, select

from core.files import write_durably
from store.models import DeletionReport, InteractionRecord

from .files import FaxFileError, overwrite_and_unlink, safe_path, walk_files
from .models import FaxReceived, FaxSent
from .service import CHANNEL, FaxService

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class FaxDeletion:
    kind: str  # fax-retention | fax-erase
    at: datetime
    cutoff: datetime | None
    items: list[dict[str, Any]] = field(default_factory=list)  # {kind, id, file, sha256}
    interactions: int = 0
    bytes: int = 0
    files_removed: int = 0
    problems: list[str] = field(default_factory=list)
    report_file: Path | None = None

    def as_json(self, actor: str) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat(), "actor": actor,
                "cutoff": self.cutoff.isoformat() if self.cutoff else None,
                "faxes": len(self.items), "interactions": self.interactions,
                "bytes": self.bytes, "files_removed": self.files_removed,
                "problems": self.problems, "items": self.items}


def _count(result: Result[Any]) -> int:
    return max(result.rowcount, 0) if isinstance(result, CursorResult) else 0


def _received(row: FaxReceived) -> dict[str, Any]:
    return {"kind": "received", "id": row.id, "file": row.file, "sha256": row.sha256,
            "size_bytes": row.size_bytes, "at": row.started_at.isoformat()}


def _sent(row: FaxSent) -> dict[str, Any]:
    return {"kind": "sent", "id": row.id, "file": row.file, "sha256": row.sha256,
            "size_bytes": row.size_bytes, "at": row.created_at.isoformat()}


def _remove(service: FaxService, deletion: FaxDeletion) -> None:
    for item in deletion.items:
        if not item["file"]:
            continue
        try:
            path = safe_path(service.paths.archive, item["file"])
        except FaxFileError as exc:
            deletion.problems.append(str(exc))
            continue
        removed = overwrite_and_unlink(path)
        if removed:
            deletion.files_removed += 1
            deletion.bytes += removed
        else:
            deletion.problems.append(f"FAX {item['id']}: file was already missing")
        if item["kind"] == "sent":  # a queued copy for the PBX, if one is left
            for suffix in (".tif", ".result"):
                deletion.bytes += overwrite_and_unlink(
                    service.paths.spool_out / f"{item['id']}{suffix}")


async def _write_report(service: FaxService, deletion: FaxDeletion, actor: str) -> None:
    stamp = deletion.at.strftime("%Y%m%dT%H%M%S%fZ")
    path = service.paths.reports / f"{stamp}-{deletion.kind}.json"
    data = json.dumps(deletion.as_json(actor), ensure_ascii=False, indent=1).encode()
    await asyncio.to_thread(write_durably, path, data, 0o600)
    deletion.report_file = path
    async with service.db.sessions() as session, session.begin():
        session.add(DeletionReport(
            at=deletion.at, kind=deletion.kind, actor=actor, cutoff=deletion.cutoff,
            calls=0, recordings=len(deletion.items), bytes=deletion.bytes,
            report_file=str(path), report_sha256=hashlib.sha256(data).hexdigest()))
    log.info("%s: %d FAXes, %d bytes removed; report %s", deletion.kind, len(deletion.items),
             deletion.bytes, path)


async def _delete_rows(service: FaxService, received: list[str], sent: list[str]) -> int:
    gone = 0
    async with service.db.sessions() as session, session.begin():
        for ids, table in ((received, FaxReceived), (sent, FaxSent)):
            for i in range(0, len(ids), BATCH):
                chunk = ids[i:i + BATCH]
                await session.execute(delete(table).where(table.id.in_(chunk)))
                result = await session.execute(delete(InteractionRecord).where(
                    InteractionRecord.channel == CHANNEL,
                    InteractionRecord.call_id.in_(chunk)))
                gone += _count(result)
    return gone


async def purge(service: FaxService, now: datetime | None = None, dry_run: bool = False,
                actor: str = "retention") -> FaxDeletion:
    """Remove FAXes (received and sent) older than the retention period, their PDFs and
    interaction records."""
    now = now or service.clock()
    cutoff = now - timedelta(days=service.config.fax.retention_days)
    deletion = FaxDeletion("fax-retention", now, cutoff)
    async with service.db.sessions() as session:
        received = (await session.scalars(select(FaxReceived).where(
            FaxReceived.started_at < cutoff).order_by(FaxReceived.id))).all()
        sent = (await session.scalars(select(FaxSent).where(
            FaxSent.created_at < cutoff).order_by(FaxSent.id))).all()
    deletion.items = [_received(r) for r in received] + [_sent(s) for s in sent]
    if dry_run or not deletion.items:
        deletion.bytes = sum(i["size_bytes"] for i in deletion.items)
        return deletion
    await asyncio.to_thread(_remove, service, deletion)
    deletion.interactions = await _delete_rows(service, [r.id for r in received],
                                               [s.id for s in sent])
    await _write_report(service, deletion, actor)
    return deletion


async def erase_all(service: FaxService, actor: str = "erase") -> FaxDeletion:
    """Every FAX row, interaction record and file (archive and spool), overwritten first."""
    deletion = FaxDeletion("fax-erase", service.clock(), None)
    async with service.db.sessions() as session:
        received = (await session.scalars(select(FaxReceived).order_by(FaxReceived.id))).all()
        sent = (await session.scalars(select(FaxSent).order_by(FaxSent.id))).all()
    deletion.items = [_received(r) for r in received] + [_sent(s) for s in sent]
    await asyncio.to_thread(_remove, service, deletion)

    def sweep() -> None:  # strays, spool leftovers, temporary files
        for root in (service.paths.archive, service.paths.spool_in, service.paths.spool_out):
            for path in list(walk_files(root)):
                deletion.bytes += overwrite_and_unlink(path)
                deletion.files_removed += 1

    await asyncio.to_thread(sweep)
    deletion.interactions = await _delete_rows(service, [r.id for r in received],
                                               [s.id for s in sent])
    async with service.db.sessions() as session, session.begin():
        result = await session.execute(delete(InteractionRecord).where(
            InteractionRecord.channel == CHANNEL))
    deletion.interactions += _count(result)
    await _write_report(service, deletion, actor)
    return deletion
