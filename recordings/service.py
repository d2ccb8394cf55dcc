"""Recording index: store a finished call with its recording, search, replay, audit.

The service has no aiohttp imports; handlers, jobs and the CLI call into it. Files move in
one direction only: Asterisk's spool folder → the archive folder (durably, checksummed) →
deleted by retention or erasure. Index rows are written only for files that are complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from ami_bridge.calls import Call
from store.db import Database
from store.models import AuditEntry, CallRecord, Recording, RecordingAgent

from . import audio
from .config import RecordingSettings, saved_retention
from .files import (
    LEGS,
    RecordingFileError,
    WavInfo,
    archive_legs,
    discard_empty,
    leg_name,
    safe_path,
    wait_complete,
)

if TYPE_CHECKING:
    from madoguchi.settings import Settings

log = logging.getLogger(__name__)

SORTS = {"started_at", "-started_at", "duration", "-duration", "wait", "-wait"}


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RecordingQuery:
    start: datetime | None = None
    end: datetime | None = None
    agent: str | None = None  # any operator who spoke on the call
    caller: str | None = None  # prefix match
    caller_contains: str | None = None  # part of the number, anywhere
    service: str | None = None
    outcome: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    sort: str = "-started_at"
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class RecordingPaths:
    spool: Path  # where Asterisk writes (state/asterisk/recordings)
    archive: Path  # finished recordings
    cache: Path  # converted audio and peaks (derived personal data: purged with the source)
    reports: Path  # deletion reports


@dataclass
class Counters:
    indexed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Actor:
    """Who is asking. Until users exist every API caller is the API token's holder; user_id
    stays None and is filled in by the users issue."""

    name: str
    client: str
    user_id: str | None = None


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds(), 3)


def operators_of(call: Call, known_agents: Iterable[str]) -> list[str]:
    """The operators who spoke with the caller, in order: the one who answered, then those
    involved in each transfer (targets only when they are our own operators)."""
    known = set(known_agents)
    seen: list[str] = []
    candidates: list[str | None] = [call.agent_id]
    for step in call.transfers:
        candidates += [step.from_agent, step.to if step.to in known else None]
    for agent in candidates:
        if agent and agent not in seen:
            seen.append(agent)
    return seen


def call_row(call: Call) -> CallRecord:
    assert call.ended_at is not None
    waited_until = call.answered_at or call.ended_at
    transfers = [{"from_agent": t.from_agent, "to": t.to, "kind": t.kind,
                  "at": t.at.isoformat()} for t in call.transfers]
    return CallRecord(
        id=call.id, asterisk_uniqueid=call.uniqueid, service=call.service, did=call.did,
        caller=call.caller, language=call.language, flow_path=",".join(call.flow_path),
        flow_version=call.flow_version, topic=call.topic,
        queue=call.queue, agent_id=call.agent_id, offered_at=call.offered_at,
        queued_at=call.queued_at, ring_at=call.ring_at, answered_at=call.answered_at,
        ended_at=call.ended_at, outcome=call.outcome,
        wait_s=_seconds(call.queued_at, waited_until), talk_s=_seconds(call.answered_at,
                                                                       call.ended_at),
        transfers=json.dumps(transfers, ensure_ascii=False))


def recording_row(call: CallRecord, relative: str, info: WavInfo, channels: int) -> Recording:
    return Recording(
        call_id=call.id, service=call.service, did=call.did, caller=call.caller,
        language=call.language, queue=call.queue, agent_id=call.agent_id,
        started_at=call.offered_at, answered_at=call.answered_at, ended_at=call.ended_at,
        duration_s=round(info.duration_s, 3), wait_s=call.wait_s, talk_s=call.talk_s,
        outcome=call.outcome, file=relative, channels=channels, size_bytes=info.size_bytes,
        sha256=info.sha256, status="ok")


class RecordingService:
    def __init__(self, db: Database, paths: RecordingPaths,
                 settings: RecordingSettings | None = None,
                 clock: Callable[[], datetime] = now_utc,
                 known_agents: Iterable[str] = ()) -> None:
        self.db = db
        self.paths = paths
        self.settings = settings or RecordingSettings()
        self.clock = clock
        self.known_agents = frozenset(known_agents)
        self.counters = Counters()
        self._convert_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def for_settings(cls, db: Database, spool: Path, settings: Settings) -> RecordingService:
        r = settings.recordings
        kept = saved_retention(settings.state_dir)
        if kept is not None:
            r = replace(r, retention_days=kept)
        paths = RecordingPaths(spool, settings.archive_dir,
                               r.resolve(settings.state_dir, r.cache_dir),
                               r.resolve(settings.state_dir, r.reports_dir))
        return cls(db, paths, r, known_agents=[a.id for a in settings.agents])

    # the walking skeleton's names, kept for the engine and its tests
    @property
    def root(self) -> Path:
        return self.paths.archive

    @property
    def indexed(self) -> int:
        return self.counters.indexed

    @property
    def failed(self) -> int:
        return self.counters.failed

    # ---- indexing ------------------------------------------------------------------------
    def legs(self, relative: str) -> list[Path]:
        return [safe_path(self.paths.spool, leg_name(relative, leg)) for leg in LEGS]

    async def close_call(self, call: Call, wait_timeout: float = 10.0) -> Recording | None:
        """Write the call record and, once both legs are complete, the archived recording.

        The call row always lands. A leg that is missing or unfinished is logged and counted,
        and stays in the spool folder, where the reconciler finishes the job later.
        """
        info: WavInfo | None = None
        legs: list[Path] = []
        if call.recording is not None:
            legs = self.legs(call.recording)
            if call.answered_at is None:
                # never bridged, so nothing was recorded: drop header-only legs
                for leg in legs:
                    await asyncio.to_thread(discard_empty, leg)
            else:
                try:
                    await asyncio.gather(*(wait_complete(p, wait_timeout) for p in legs))
                    info = await asyncio.to_thread(
                        archive_legs, legs[0], legs[1],
                        safe_path(self.paths.archive, call.recording))
                except (RecordingFileError, OSError) as exc:
                    self.counters.failed += 1
                    log.error("call %s: recording not archived (reconciler will retry): %s",
                              call.id, exc)

        async def insert(session: AsyncSession) -> Recording | None:
            row = call_row(call)
            session.add(row)
            if info is None or call.recording is None:
                return None
            rec = recording_row(row, call.recording, info, channels=2)
            session.add(rec)
            await session.flush()
            self._add_agents(session.add, rec, operators_of(call, self.known_agents))
            return rec

        rec = await self.db.write(insert, f"call {call.id}")
        if rec is not None:
            for leg in legs:
                await asyncio.to_thread(leg.unlink, missing_ok=True)
            self.counters.indexed += 1
        return rec

    @staticmethod
    def _add_agents(add: Callable[[RecordingAgent], None], rec: Recording,
                    agents: Sequence[str]) -> None:
        for agent in agents:
            add(RecordingAgent(recording_id=rec.id, agent_id=agent, started_at=rec.started_at))

    # ---- search --------------------------------------------------------------------------
    def search_statement(self, q: RecordingQuery) -> Select[Recording]:
        stmt = select(Recording)
        if q.agent:
            # the (agent_id, started_at) index on recording_agents serves operator searches
            stmt = stmt.join(RecordingAgent, RecordingAgent.recording_id == Recording.id)
            stmt = stmt.where(RecordingAgent.agent_id == q.agent)
            time_col = RecordingAgent.started_at
        else:
            time_col = Recording.started_at
        if q.start is not None:
            stmt = stmt.where(time_col >= q.start)
        if q.end is not None:
            stmt = stmt.where(time_col < q.end)
        if q.caller:
            # a range, not LIKE: it uses the (caller, started_at) index on SQLite (whose LIKE
            # is case-folding) and on PostgreSQL (whose LIKE needs the C collation)
            upper = q.caller[:-1] + chr(ord(q.caller[-1]) + 1)
            stmt = stmt.where(Recording.caller >= q.caller, Recording.caller < upper)
        if q.caller_contains:
            stmt = stmt.where(Recording.caller.contains(q.caller_contains, autoescape=True))
        if q.service:
            stmt = stmt.where(Recording.service == q.service)
        if q.outcome:
            stmt = stmt.where(Recording.outcome == q.outcome)
        if q.min_duration is not None:
            stmt = stmt.where(Recording.duration_s >= q.min_duration)
        if q.max_duration is not None:
            stmt = stmt.where(Recording.duration_s <= q.max_duration)
        key = q.sort.lstrip("-")
        desc = q.sort.startswith("-")
        col = {"started_at": time_col, "duration": Recording.duration_s,
               "wait": Recording.wait_s}[key]
        stmt = stmt.order_by(col.desc() if desc else col.asc(),
                             Recording.id.desc() if desc else Recording.id.asc())
        return stmt.limit(q.limit + 1).offset(q.offset)

    async def search(self, q: RecordingQuery) -> tuple[list[Recording], bool]:
        """One page of recordings and whether another page follows."""
        async with self.db.sessions() as session:
            rows = list((await session.scalars(self.search_statement(q))).all())
        return rows[:q.limit], len(rows) > q.limit

    async def get(self, recording_id: int) -> Recording | None:
        async with self.db.sessions() as session:
            return await session.get(Recording, recording_id)

    async def details(self, recording_id: int) -> tuple[Recording, CallRecord, list[str]] | None:
        async with self.db.sessions() as session:
            rec = await session.get(Recording, recording_id)
            if rec is None:
                return None
            call = await session.get(CallRecord, rec.call_id)
            agents = list((await session.scalars(
                select(RecordingAgent.agent_id).where(RecordingAgent.recording_id == rec.id)
            )).all())
        assert call is not None  # foreign key
        return rec, call, agents

    def path_of(self, rec: Recording) -> Path:
        return safe_path(self.paths.archive, rec.file)

    # ---- replay --------------------------------------------------------------------------
    def _cache_path(self, rec: Recording, suffix: str) -> Path:
        # the checksum in the name: a replaced file never serves a stale conversion
        return self.paths.cache / f"{rec.id}-{rec.sha256[:16]}.{suffix}"

    async def _cached(self, key: Path, make: Callable[[Path], None]) -> Path:
        lock = self._convert_locks.setdefault(str(key), asyncio.Lock())
        async with lock:
            if not await asyncio.to_thread(key.exists):
                await asyncio.to_thread(make, key)
        self._convert_locks.pop(str(key), None)
        return key

    async def converted(self, rec: Recording, fmt: str) -> Path:
        src = self.path_of(rec)
        return await self._cached(self._cache_path(rec, fmt),
                                  lambda dest: audio.convert(src, dest, fmt))

    async def peaks(self, rec: Recording, buckets: int) -> bytes:
        src = self.path_of(rec)

        def make(dest: Path) -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = json.dumps(audio.peaks(src, buckets), separators=(",", ":"))
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_text(data, encoding="utf-8")
            tmp.replace(dest)

        path = await self._cached(self._cache_path(rec, f"peaks{buckets}.json"), make)
        return await asyncio.to_thread(path.read_bytes)

    def cache_files(self, recording_id: int) -> list[Path]:
        if not self.paths.cache.is_dir():
            return []
        return sorted(self.paths.cache.glob(f"{recording_id}-*"))

    # ---- audit ---------------------------------------------------------------------------
    async def audit(self, actor: Actor, action: str, rec: Recording | None = None,
                    detail: str = "") -> None:
        await self.db.add(AuditEntry(
            at=self.clock(), actor=actor.name, user_id=actor.user_id,
            client=actor.client[:64], action=action,
            recording_id=rec.id if rec else None, call_id=rec.call_id if rec else None,
            detail=detail[:2000]), what=f"audit {action}")

    async def audit_rows(self, recording_id: int | None = None,
                         limit: int = 100) -> list[AuditEntry]:
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if recording_id is not None:
            stmt = stmt.where(AuditEntry.recording_id == recording_id)
        async with self.db.sessions() as session:
            return list((await session.scalars(stmt)).all())

