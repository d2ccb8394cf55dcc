"""Recording index: store a finished call with its recording, search, replay, audit.

The service has no aiohttp imports; handlers, jobs and the CLI call into it. Files move in
one direction only: Asterisk's spool folder → the archive folder (durably, checksummed) →
deleted by retention or erasure. Index rows are written only for files that are complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from core.calls import Call, Outcome
from core.identity import Actor
from store.db import Database
from store.journal import Journal
from store.models import AuditEntry, CallRecord, Recording, RecordingAgent, UtcDateTime

from . import audio
from .config import RecordingSettings, recording_settings, save_retention, saved_retention
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
    from core.settings import Settings

log = logging.getLogger(__name__)

SORTS = {"started_at", "-started_at", "duration", "-duration", "wait", "-wait"}
CALL_JOURNAL = "calls"  # state/journal/calls.jsonl: call records the database refused


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
    journaled: int = 0  # call records kept in the journal while the database refused them
    replayed: int = 0


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
                                                                       call.talk_until),
        transfers=json.dumps(transfers, ensure_ascii=False), callback_of=call.callback_of)


def recording_row(call: CallRecord, relative: str, info: WavInfo, channels: int) -> Recording:
    return Recording(
        call_id=call.id, service=call.service, did=call.did, caller=call.caller,
        language=call.language, queue=call.queue, agent_id=call.agent_id,
        started_at=call.offered_at, answered_at=call.answered_at, ended_at=call.ended_at,
        duration_s=round(info.duration_s, 3), wait_s=call.wait_s, talk_s=call.talk_s,
        outcome=call.outcome, file=relative, channels=channels, size_bytes=info.size_bytes,
        sha256=info.sha256, status="ok")


# ---- a closed call's rows as one journal entry -----------------------------------------------
# The same entry is written first to the database and, when that fails, to the journal; both
# paths store it with store_call_entry, which is harmless to repeat.

def call_entry(call: Call, info: WavInfo | None, agents: Sequence[str]) -> dict[str, Any]:
    row = call_row(call)
    fields = {attr.key: getattr(row, attr.key) for attr in sa_inspect(CallRecord).column_attrs}
    return {
        "key": call.id, "v": 1,
        "call": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()},
        "recording": None if info is None or call.recording is None else {
            "file": call.recording, "channels": 2, "size_bytes": info.size_bytes,
            "duration_s": info.duration_s, "sha256": info.sha256},
        "agents": list(agents),
    }


def _call_of(entry: dict[str, Any]) -> CallRecord:
    values: dict[str, Any] = {}
    for attr in sa_inspect(CallRecord).column_attrs:
        raw = entry["call"].get(attr.key)
        if raw is not None and isinstance(attr.columns[0].type, UtcDateTime):
            raw = datetime.fromisoformat(raw)
        values[attr.key] = raw
    return CallRecord(**values)


def _reconciler_stand_in(row: CallRecord) -> bool:
    """A row the reconciler made for an archive file it found without one (it knows only the
    file): the call's own details replace it."""
    return row.outcome == Outcome.RECOVERED and row.service == "unknown"


_FILE_FACTS = frozenset({"id", "file", "channels", "size_bytes", "sha256", "duration_s",
                         "status"})


async def store_call_entry(session: AsyncSession, entry: dict[str, Any]) -> Recording | None:
    """Write a closed call's rows from its entry. Idempotent: a call already stored is left
    as it is; one the reconciler stood in for gets its real details."""
    fresh = _call_of(entry)
    existing = await session.get(CallRecord, fresh.id)
    if existing is not None and not _reconciler_stand_in(existing):
        return None
    rec: Recording | None = None
    if existing is None:
        session.add(fresh)
        call = fresh
    else:
        for attr in sa_inspect(CallRecord).column_attrs:
            setattr(existing, attr.key, getattr(fresh, attr.key))
        call = existing
        rec = await session.scalar(select(Recording).where(Recording.call_id == call.id))
    stored = entry.get("recording")
    if rec is not None:
        # the search columns are copies of the call's: copy the real ones
        real = recording_row(call, rec.file, WavInfo(rec.size_bytes, rec.duration_s,
                                                     rec.sha256), rec.channels)
        for attr in sa_inspect(Recording).column_attrs:
            if attr.key not in _FILE_FACTS:
                setattr(rec, attr.key, getattr(real, attr.key))
    elif stored is not None:
        rec = recording_row(call, stored["file"], WavInfo(stored["size_bytes"],
                                                          stored["duration_s"],
                                                          stored["sha256"]),
                            stored["channels"])
        session.add(rec)
    else:
        return None
    await session.flush()
    known = set((await session.scalars(select(RecordingAgent.agent_id).where(
        RecordingAgent.recording_id == rec.id))).all()) if existing is not None else set()
    RecordingService._add_agents(session.add, rec,
                                 [a for a in entry.get("agents", []) if a not in known])
    return rec


def _storing(entry: dict[str, Any]) -> Callable[[AsyncSession], Awaitable[Recording | None]]:
    return lambda session: store_call_entry(session, entry)


def _database_away(exc: BaseException) -> bool:
    """The database is unreachable or busy (not refusing this one entry)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class RecordingService:
    def __init__(self, db: Database, paths: RecordingPaths,
                 settings: RecordingSettings | None = None,
                 clock: Callable[[], datetime] = now_utc,
                 known_agents: Iterable[str] = (), journal: Journal | None = None) -> None:
        self.db = db
        self.paths = paths
        self.settings = settings or RecordingSettings()
        self.clock = clock
        self.known_agents = frozenset(known_agents)
        self.journal = journal
        self.counters = Counters()
        self._convert_locks: dict[str, asyncio.Lock] = {}
        self._replaying = asyncio.Lock()

    @classmethod
    def for_settings(cls, db: Database, spool: Path, settings: Settings) -> RecordingService:
        r = recording_settings(settings)
        kept = saved_retention(settings.state_dir)
        if kept is not None:
            r = replace(r, retention_days=kept)
        paths = RecordingPaths(spool, r.resolve(settings.state_dir, r.archive_dir),
                               r.resolve(settings.state_dir, r.cache_dir),
                               r.resolve(settings.state_dir, r.reports_dir))
        return cls(db, paths, r, known_agents=[a.id for a in settings.agents],
                   journal=Journal(settings.state_dir / "journal", CALL_JOURNAL))

    async def set_retention(self, state_dir: Path, days: int) -> int:
        """Keep recordings `days` from now on, on disk first (a restarted engine's purge
        must see the same value); returns the previous retention. ValueError says why not."""
        await asyncio.to_thread(save_retention, state_dir, days)
        old = self.settings.retention_days
        self.settings = replace(self.settings, retention_days=days)
        return old

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

        The call row always lands: in the database or, when the database still refuses it
        after Database.write's retries, in the journal, replayed later (replay_journal).
        A leg that is missing or unfinished is logged and counted, and stays in the spool
        folder, where the reconciler finishes the job later.
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

        entry = call_entry(call, info, operators_of(call, self.known_agents))
        try:
            rec = await self.db.write(_storing(entry), f"call {call.id}")
        except (SQLAlchemyError, OSError) as exc:
            if self.journal is None:
                raise
            await asyncio.to_thread(self.journal.append, entry)
            self.counters.journaled += 1
            log.error("call %s: the database refused the call record (%s); kept in %s until "
                      "it answers again", call.id, exc, self.journal.path)
            rec = None
        if info is not None:  # archived: the file and the row (or its entry) hold it now
            for leg in legs:
                await asyncio.to_thread(leg.unlink, missing_ok=True)
        if rec is not None:
            self.counters.indexed += 1
        return rec

    async def replay_journal(self) -> int:
        """Store the call records kept in the journal, oldest first; each entry is removed
        once its rows are committed. Stops at the first sign that the database is still
        away; an entry the database refuses for itself is kept, and the rest go on.
        Returns how many entries were stored."""
        if self.journal is None:
            return 0
        async with self._replaying:
            entries = await asyncio.to_thread(self.journal.entries)
            done: list[str] = []
            try:
                for entry in entries:
                    key = entry["key"]
                    try:
                        rec = await self.db.write(_storing(entry), f"journaled call {key}")
                    except (SQLAlchemyError, OSError) as exc:
                        if _database_away(exc):
                            log.warning("journal replay paused, database still away: %s", exc)
                            break
                        log.error("journal: call %s refused by the database, kept: %s", key,
                                  exc)
                        continue
                    done.append(key)
                    if rec is not None:
                        self.counters.indexed += 1
            finally:
                if done:
                    await asyncio.to_thread(self.journal.remove, done)
                    self.counters.replayed += len(done)
                    log.warning("journal: %d call record(s) stored after the database came "
                                "back", len(done))
        return len(done)

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

