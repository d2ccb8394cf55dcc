"""Recording index: store a finished call with its recording, and search recordings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from ami_bridge.calls import Call
from store.db import Database
from store.models import CallRecord, Recording

from .files import RecordingFileError, WavInfo, discard_empty, safe_path, wait_complete

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordingQuery:
    start: datetime | None = None
    end: datetime | None = None
    agent: str | None = None
    caller: str | None = None  # prefix match
    service: str | None = None
    limit: int = 100
    offset: int = 0


class RecordingService:
    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.root = root
        self.indexed = 0
        self.failed = 0

    async def close_call(self, call: Call, wait_timeout: float = 10.0) -> Recording | None:
        """Write the call record, then its recording row once the file is complete.

        The call row always lands; a missing or broken file is logged and counted, never
        turned into a row pointing at nothing.
        """
        info: WavInfo | None = None
        if call.answered_at is None and call.recording is not None:
            # nothing was bridged, so nothing was recorded: drop an empty file if one exists
            await asyncio.to_thread(discard_empty, safe_path(self.root, call.recording))
            call.recording = None
        if call.recording is not None:
            try:
                info = await wait_complete(safe_path(self.root, call.recording), wait_timeout)
            except RecordingFileError as exc:
                self.failed += 1
                log.error("call %s: %s", call.id, exc)
        assert call.ended_at is not None
        async with self.db.sessions() as session, session.begin():
            session.add(CallRecord(
                id=call.id, asterisk_uniqueid=call.uniqueid, service=call.service, did=call.did,
                caller=call.caller, language=call.language, flow_path=",".join(call.flow_path),
                flow_version=call.flow_version, topic=call.topic,
                queue=call.queue, agent_id=call.agent_id, offered_at=call.offered_at,
                queued_at=call.queued_at, ring_at=call.ring_at, answered_at=call.answered_at,
                ended_at=call.ended_at, outcome=call.outcome))
            if info is None or call.recording is None:
                return None
            rec = Recording(
                call_id=call.id, service=call.service, caller=call.caller,
                agent_id=call.agent_id, started_at=call.offered_at, ended_at=call.ended_at,
                duration_s=round(info.duration_s, 3), file=call.recording,
                size_bytes=info.size_bytes, sha256=info.sha256)
            session.add(rec)
        self.indexed += 1
        return rec

    async def search(self, q: RecordingQuery) -> list[tuple[Recording, CallRecord]]:
        stmt = select(Recording, CallRecord).join(CallRecord, CallRecord.id == Recording.call_id)
        if q.start is not None:
            stmt = stmt.where(Recording.started_at >= q.start)
        if q.end is not None:
            stmt = stmt.where(Recording.started_at < q.end)
        if q.agent:
            stmt = stmt.where(Recording.agent_id == q.agent)
        if q.caller:
            stmt = stmt.where(Recording.caller.startswith(q.caller, autoescape=True))
        if q.service:
            stmt = stmt.where(Recording.service == q.service)
        stmt = stmt.order_by(Recording.started_at.desc(), Recording.id.desc())
        stmt = stmt.limit(q.limit).offset(q.offset)
        async with self.db.sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [(r[0], r[1]) for r in rows]

    async def get(self, recording_id: int) -> Recording | None:
        async with self.db.sessions() as session:
            return await session.get(Recording, recording_id)

    def path_of(self, rec: Recording) -> Path:
        return safe_path(self.root, rec.file)
