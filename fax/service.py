"""The FAX inbox: received FAXes found, read, taken and finished, with an interaction record
each; every access audited. No aiohttp here: handlers, jobs and the CLI call into it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity import Actor
from core.interactions import OtherKind, OutcomeClass
from store.db import Database
from store.models import AuditEntry, InteractionRecord

from .errors import FaxFileMissing, FaxNotFound, TransitionRefused
from .files import FaxFileError, safe_path
from .models import FaxReceived, FaxSent
from .settings import FaxConfig

CHANNEL = "fax"  # interaction records' channel: outside the phone KPIs
SERVICE = "fax"


class FaxStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class FaxResult(StrEnum):
    OK = "ok"
    FAILED = "failed"
    PARTIAL = "partial"


# (from, to): taking a FAX, handing it back, finishing it, reopening a finished one. Anything
# else (new → done without anyone taking it, a repeat of the same status) is refused.
TRANSITIONS: frozenset[tuple[FaxStatus, FaxStatus]] = frozenset({
    (FaxStatus.NEW, FaxStatus.IN_PROGRESS),
    (FaxStatus.IN_PROGRESS, FaxStatus.NEW),
    (FaxStatus.IN_PROGRESS, FaxStatus.DONE),
    (FaxStatus.DONE, FaxStatus.IN_PROGRESS),
})


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FaxQuery:
    start: datetime | None = None
    end: datetime | None = None
    number: str | None = None  # part of the caller's number or the remote station id
    status: FaxStatus | None = None
    result: FaxResult | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class FaxInteraction:
    topic: str
    outcome_class: OutcomeClass
    other_kind: OtherKind | None
    text: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def received_json(row: FaxReceived) -> dict[str, Any]:
    return {
        "id": row.id, "did": row.did, "caller": row.caller,
        "remote_station": row.remote_station, "pages": row.pages,
        "resolution": row.resolution, "result": row.result, "error": row.error,
        "started_at": row.started_at.isoformat(), "ended_at": row.ended_at.isoformat(),
        "indexed_at": row.indexed_at.isoformat(), "status": row.status,
        "status_by": row.status_by, "status_at": _iso(row.status_at),
        "file_type": row.file_type, "size_bytes": row.size_bytes, "sha256": row.sha256,
        "pdf_url": f"/api/fax/{row.id}/pdf" if row.file_type == "pdf" else None,
    }


def sent_json(row: FaxSent) -> dict[str, Any]:
    return {
        "id": row.id, "number": row.number, "actor": row.actor,
        "created_at": row.created_at.isoformat(), "pages": row.pages,
        "state": row.state, "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at), "pages_sent": row.pages_sent,
        "result": json.loads(row.result) if row.result else None,
        "finished_at": _iso(row.finished_at), "size_bytes": row.size_bytes,
        "sha256": row.sha256, "pdf_url": f"/api/fax/sent/{row.id}/pdf",
    }


def interaction_json(row: InteractionRecord) -> dict[str, Any]:
    return {"id": row.id, "fax_id": row.call_id, "channel": row.channel,
            "agent_id": row.agent_id, "topic": row.topic, "outcome_class": row.outcome_class,
            "other_kind": row.other_kind, "text": row.text,
            "created_at": row.created_at.isoformat()}


class FaxService:
    def __init__(self, db: Database, config: FaxConfig,
                 clock: Callable[[], datetime] = now_utc) -> None:
        self.db = db
        self.config = config
        self.paths = config.paths
        self.clock = clock

    # ---- the inbox -----------------------------------------------------------------------
    async def search(self, q: FaxQuery) -> tuple[list[FaxReceived], bool]:
        stmt = select(FaxReceived)
        if q.start is not None:
            stmt = stmt.where(FaxReceived.started_at >= q.start)
        if q.end is not None:
            stmt = stmt.where(FaxReceived.started_at < q.end)
        if q.number:
            stmt = stmt.where(FaxReceived.caller.contains(q.number, autoescape=True)
                              | FaxReceived.remote_station.contains(q.number, autoescape=True))
        if q.status is not None:
            stmt = stmt.where(FaxReceived.status == q.status.value)
        if q.result is not None:
            stmt = stmt.where(FaxReceived.result == q.result.value)
        stmt = stmt.order_by(FaxReceived.started_at.desc(), FaxReceived.id)
        async with self.db.sessions() as session:
            rows = list((await session.scalars(stmt.offset(q.offset).limit(q.limit + 1))).all())
        return rows[:q.limit], len(rows) > q.limit

    async def get(self, fax_id: str) -> FaxReceived:
        async with self.db.sessions() as session:
            row = await session.get(FaxReceived, fax_id)
        if row is None:
            raise FaxNotFound()
        return row

    def pdf_of(self, row: FaxReceived | FaxSent) -> Path:
        """The archived PDF of a FAX; FaxFileMissing when there is none."""
        if isinstance(row, FaxReceived) and row.file_type != "pdf":
            raise FaxFileMissing()
        if not row.file:
            raise FaxFileMissing()
        try:
            path = safe_path(self.paths.archive, row.file)
        except FaxFileError as exc:
            raise FaxFileMissing("the FAX's file is unavailable") from exc
        if not path.is_file():
            raise FaxFileMissing("the FAX's file is missing")
        return path

    async def set_status(self, fax_id: str, new: FaxStatus, actor: Actor) -> FaxReceived:
        """Move a FAX along TRANSITIONS, recording who and when; 409 for anything else."""
        at = self.clock()

        async def change(session: AsyncSession) -> FaxReceived:
            row = await session.get(FaxReceived, fax_id, with_for_update=True)
            if row is None:
                raise FaxNotFound()
            old = FaxStatus(row.status)
            if (old, new) not in TRANSITIONS:
                raise TransitionRefused(f"a FAX cannot go from {old.value} to {new.value}",
                                        extra={"from": old.value, "to": new.value})
            row.status, row.status_by, row.status_at = new.value, actor.name[:64], at
            return row

        row = await self.db.write(change, f"FAX {fax_id} status")
        await self.audit(actor, "fax_status", fax_id, f"status={new.value}")
        return row

    # ---- interaction records --------------------------------------------------------------
    async def interaction(self, fax_id: str) -> InteractionRecord | None:
        async with self.db.sessions() as session:
            return await session.scalar(select(InteractionRecord).where(
                InteractionRecord.call_id == fax_id, InteractionRecord.channel == CHANNEL))

    async def add_interaction(self, fax_id: str, new: FaxInteraction,
                              actor: Actor) -> InteractionRecord:
        fax = await self.get(fax_id)
        row = InteractionRecord(
            call_id=fax.id, agent_id=actor.agent_id, service=SERVICE, topic=new.topic,
            outcome_class=new.outcome_class.value,
            other_kind=new.other_kind.value if new.other_kind else None, text=new.text,
            faq_refs="[]", created_at=self.clock(), call_offered_at=fax.started_at,
            channel=CHANNEL)

        async def insert(session: AsyncSession) -> None:
            exists = await session.scalar(select(InteractionRecord.id).where(
                InteractionRecord.call_id == fax.id))
            if exists is not None:
                raise TransitionRefused(f"FAX {fax.id} already has its interaction record",
                                        error_id="duplicate_record")
            session.add(row)

        await self.db.write(insert, f"interaction record for FAX {fax.id}")
        await self.audit(actor, "fax_record", fax.id, f"class={new.outcome_class.value}")
        return row

    # ---- sent FAXes -------------------------------------------------------------------------
    async def sent(self, job_id: str) -> FaxSent:
        async with self.db.sessions() as session:
            row = await session.get(FaxSent, job_id)
        if row is None:
            raise FaxNotFound("no such sent FAX")
        return row

    async def sent_list(self, limit: int, offset: int) -> tuple[list[FaxSent], bool]:
        stmt = select(FaxSent).order_by(FaxSent.created_at.desc(), FaxSent.id)
        async with self.db.sessions() as session:
            rows = list((await session.scalars(stmt.offset(offset).limit(limit + 1))).all())
        return rows[:limit], len(rows) > limit

    # ---- counts for the monthly report ------------------------------------------------------
    async def counts(self, start: datetime, end: datetime) -> dict[str, int]:
        """FAXes received (by result) and sent (by state) in [start, end)."""
        out: dict[str, int] = {}
        async with self.db.sessions() as session:
            for result, n in (await session.execute(
                    select(FaxReceived.result, func.count()).where(
                        FaxReceived.started_at >= start, FaxReceived.started_at < end)
                    .group_by(FaxReceived.result))).all():
                out[f"fax_received_{result}"] = int(n)
            for state, n in (await session.execute(
                    select(FaxSent.state, func.count()).where(
                        FaxSent.created_at >= start, FaxSent.created_at < end)
                    .group_by(FaxSent.state))).all():
                out[f"fax_sent_{state}"] = int(n)
        return out

    # ---- the audit log ----------------------------------------------------------------------
    async def audit(self, actor: Actor, action: str, fax_id: str | None = None,
                    detail: str = "") -> None:
        """FAX accesses go to the same audit log as recording plays; the FAX's id is kept in
        call_id (both are our 32-hex ids)."""
        await self.db.add(AuditEntry(
            at=self.clock(), actor=actor.name[:64], user_id=actor.user_id,
            client=actor.client[:64], action=action, call_id=fax_id,
            detail=detail[:2000]), what=f"audit {action}")
