"""Retention purge and full erasure, each leaving a deletion report.

Order matters for crash safety: the list of what goes is captured first, audio is removed
before rows (a crash in between leaves rows without files, which the reconciler reports and
the next purge finishes — never files without rows, which it would index again), and the
report is written last with what was actually removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from core.files import write_durably
from store.models import Base, CallRecord, DeletionReport, Recording, RecordingAgent, SurveyAnswer

from .files import RecordingFileError, overwrite_and_unlink, safe_path, walk_files
from .service import RecordingService

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class Deletion:
    kind: str
    at: datetime
    cutoff: datetime | None
    calls: int = 0
    recordings: list[dict[str, Any]] = field(default_factory=list)
    bytes: int = 0
    other_rows: dict[str, int] = field(default_factory=dict)
    files_removed: int = 0
    problems: list[str] = field(default_factory=list)
    report_file: Path | None = None

    def as_json(self, actor: str) -> dict[str, Any]:
        return {
            "kind": self.kind, "at": self.at.isoformat(), "actor": actor,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "calls": self.calls, "recordings_count": len(self.recordings),
            "bytes": self.bytes, "files_removed": self.files_removed,
            "other_rows": self.other_rows, "problems": self.problems,
            "recordings": self.recordings,
        }


def _item(rec: Recording) -> dict[str, Any]:
    return {"id": rec.id, "call_id": rec.call_id, "file": rec.file, "sha256": rec.sha256,
            "size_bytes": rec.size_bytes, "started_at": rec.started_at.isoformat()}


async def _write_report(service: RecordingService, deletion: Deletion, actor: str) -> None:
    stamp = deletion.at.strftime("%Y%m%dT%H%M%S%fZ")
    path = service.paths.reports / f"{stamp}-{deletion.kind}.json"
    data = json.dumps(deletion.as_json(actor), ensure_ascii=False, indent=1).encode()
    await asyncio.to_thread(write_durably, path, data)
    deletion.report_file = path
    async with service.db.sessions() as session, session.begin():
        session.add(DeletionReport(
            at=deletion.at, kind=deletion.kind, actor=actor, cutoff=deletion.cutoff,
            calls=deletion.calls, recordings=len(deletion.recordings), bytes=deletion.bytes,
            report_file=str(path), report_sha256=hashlib.sha256(data).hexdigest()))
    log.info("%s: %d calls, %d recordings, %d bytes removed; report %s", deletion.kind,
             deletion.calls, len(deletion.recordings), deletion.bytes, path)


def _remove(service: RecordingService, items: list[dict[str, Any]],
            deletion: Deletion) -> None:
    for item in items:
        try:
            path = safe_path(service.paths.archive, item["file"])
        except RecordingFileError as exc:
            deletion.problems.append(str(exc))
            continue
        removed = overwrite_and_unlink(path)
        if removed:
            deletion.files_removed += 1
            deletion.bytes += removed
        else:
            deletion.problems.append(f"recording {item['id']}: file was already missing")
        for cached in service.cache_files(item["id"]):
            overwrite_and_unlink(cached)


async def purge(service: RecordingService, now: datetime | None = None, dry_run: bool = False,
                actor: str = "retention") -> Deletion:
    """Remove calls, their recordings and survey answers older than the retention period
    (whole days from now)."""
    now = now or service.clock()
    cutoff = now - timedelta(days=service.settings.retention_days)
    deletion = Deletion("retention", now, cutoff)
    async with service.db.sessions() as session:
        recs = (await session.scalars(select(Recording).where(Recording.started_at < cutoff)
                                      .order_by(Recording.id))).all()
        call_ids = list((await session.scalars(
            select(CallRecord.id).where(CallRecord.offered_at < cutoff))).all())
        # the survey answers of those calls, by the calls' offer time (no key to follow)
        answers = int(await session.scalar(select(func.count()).select_from(SurveyAnswer)
                                           .where(SurveyAnswer.call_offered_at < cutoff)) or 0)
    deletion.recordings = [_item(r) for r in recs]
    deletion.calls = len(call_ids)
    if answers:
        deletion.other_rows[SurveyAnswer.__tablename__] = answers
    if dry_run:
        deletion.bytes = sum(r.size_bytes for r in recs)
        return deletion
    if not recs and not call_ids and not answers:
        return deletion
    await asyncio.to_thread(_remove, service, deletion.recordings, deletion)
    rec_ids = [r.id for r in recs]
    async with service.db.sessions() as session, session.begin():
        for i in range(0, len(rec_ids), BATCH):
            chunk = rec_ids[i:i + BATCH]
            await session.execute(delete(RecordingAgent)
                                  .where(RecordingAgent.recording_id.in_(chunk)))
            await session.execute(delete(Recording).where(Recording.id.in_(chunk)))
        # a call younger than the cutoff keeps its recording: both go together, later
        for i in range(0, len(call_ids), BATCH):
            ids = call_ids[i:i + BATCH]
            await session.execute(delete(Recording).where(Recording.call_id.in_(ids)))
            await session.execute(delete(CallRecord).where(CallRecord.id.in_(ids)))
        await session.execute(delete(SurveyAnswer).where(SurveyAnswer.call_offered_at < cutoff))
    await _write_report(service, deletion, actor)
    return deletion


async def erase_all(service: RecordingService, actor: str = "erase") -> Deletion:
    """Delete every row of personal data and every recording file, overwriting first.

    Every table goes except the deletion reports (counts and checksums, no personal data):
    calls, recordings, the audit log and whatever other tables the schema holds (interaction
    records, bookings, FAQ and directory data as they arrive, §14(2)).
    """
    now = service.clock()
    deletion = Deletion("erase", now, None)
    async with service.db.sessions() as session:
        recs = (await session.scalars(select(Recording).order_by(Recording.id))).all()
        deletion.recordings = [_item(r) for r in recs]
        deletion.calls = int(await session.scalar(select(func.count()).select_from(
            CallRecord)) or 0)
    await asyncio.to_thread(_remove, service, deletion.recordings, deletion)

    def sweep() -> None:
        # whatever else is there: legs in the spool, fail-open files, cache, strays
        for root in (service.paths.archive, service.paths.spool, service.paths.cache):
            for path in list(walk_files(root)):
                deletion.bytes += overwrite_and_unlink(path)
                deletion.files_removed += 1
            for dirpath, _dirs, _files in sorted(os.walk(root), reverse=True):
                if Path(dirpath) != root:
                    os.rmdir(dirpath)

    await asyncio.to_thread(sweep)
    keep = {DeletionReport.__tablename__}
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in keep]
    sqlite = service.db.url.startswith("sqlite")
    async with service.db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if sqlite:
            # freed pages are zeroed instead of left holding the deleted rows
            await conn.exec_driver_sql("PRAGMA secure_delete=ON")
        for table in tables:
            result = await conn.execute(table.delete())
            if table.name not in (CallRecord.__tablename__, Recording.__tablename__):
                deletion.other_rows[table.name] = max(result.rowcount, 0)
        if sqlite:
            await conn.exec_driver_sql("VACUUM")
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            for table in tables:
                await conn.exec_driver_sql(f'VACUUM FULL "{table.name}"')
    await _write_report(service, deletion, actor)
    return deletion
