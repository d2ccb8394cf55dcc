"""Console sessions: looked up in memory by every request's access check, kept in the
console_sessions table so that an engine restart logs nobody out.

The cookie's value is stored only as its SHA-256, so a copy of the database opens no
session. Changes are written behind the requests, in order, by one task (a failed write
leaves the session working in memory and is logged); the last-seen time is written at most
every TOUCH_EVERY, so after a restart a session may expire up to that much earlier than it
would have. At start the rows of expired sessions go, and so do those of users who were
removed, disabled, given another role or extension, or replaced since they logged in: what
ending a user's sessions (`end_user`) does while the engine runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Index, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.db import Database
from store.models import Base, UtcDateTime

from .models import ConsoleUser

log = logging.getLogger(__name__)
TOUCH_EVERY = timedelta(minutes=1)  # at most; a tenth of the idle timeout when that is shorter

Clock = Callable[[], datetime]
Work = Callable[[AsyncSession], Awaitable[Any]]


def _now() -> datetime:
    return datetime.now(UTC)


def digest(sid: str) -> str:
    """What the table keeps of a session's cookie value."""
    return hashlib.sha256(sid.encode()).hexdigest()


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256, hex
    user_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(16))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_console_sessions_user", "user_name"),)


@dataclass
class Session:
    # the cookie's value; empty for a session read from the database until its cookie
    # comes back (the table holds its hash only)
    id: str
    user: str
    role: str
    agent_id: str | None
    csrf: str
    last_seen: datetime
    created: datetime


class Sessions:
    """The sessions of the console; with a database they outlive the engine (start, close)."""

    def __init__(self, idle: timedelta, clock: Clock = _now, db: Database | None = None
                 ) -> None:
        self.idle = idle
        self.clock = clock
        self.db = db
        self.touch_every = min(TOUCH_EVERY, idle / 10)
        self._by_id: dict[str, Session] = {}  # by the SHA-256 of the cookie value
        self._saved_seen: dict[str, datetime] = {}  # last_seen as the table has it
        # open WebSockets per session: they end with it, not only at the next request
        self._sockets: dict[str, set[asyncio.Task[Any]]] = {}
        self._saving = False  # from start() to close()
        self._pending: deque[Work] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._pruned = clock()

    async def start(self) -> None:
        """Take up the sessions kept in the database; from now on changes are saved."""
        if self.db is None or self._saving:
            return
        kept = await self.db.write(self._load, "console sessions (start)")
        for row in kept:
            h = row.id_hash
            self._by_id[h] = Session("", row.user_name, row.role, row.agent_id, row.csrf,
                                     row.last_seen, row.created_at)
            self._saved_seen[h] = row.last_seen
        self._saving = True
        if kept:
            log.info("%d console session(s) kept from before the restart", len(kept))

    async def _load(self, session: AsyncSession) -> list[ConsoleSession]:
        cutoff = self.clock() - self.idle
        rows = (await session.execute(
            select(ConsoleSession, ConsoleUser).outerjoin(
                ConsoleUser, ConsoleUser.name == ConsoleSession.user_name))).all()
        kept, gone = [], []
        for row, user in rows:
            if row.last_seen < cutoff or user is None or user.disabled \
                    or (user.role, user.agent_id) != (row.role, row.agent_id) \
                    or row.created_at < user.created_at:
                gone.append(row.id_hash)
            else:
                kept.append(row)
        if gone:
            await session.execute(delete(ConsoleSession).where(
                ConsoleSession.id_hash.in_(gone)))
        return kept

    async def close(self) -> None:
        """Write what is still pending; the sessions stay in the table for the next start."""
        if self._writer is not None:
            await self._writer
        self._saving = False

    def create(self, user: ConsoleUser) -> Session:
        now = self.clock()
        self._prune(now)
        s = Session(secrets.token_urlsafe(32), user.name, user.role, user.agent_id,
                    secrets.token_urlsafe(32), now, now)
        h = digest(s.id)
        self._by_id[h] = s
        self._saved_seen[h] = now
        row = ConsoleSession(id_hash=h, user_name=s.user, role=s.role, agent_id=s.agent_id,
                             csrf=s.csrf, created_at=now, last_seen=now)

        async def insert(session: AsyncSession) -> None:
            session.add(row)
        self._save(insert)
        return s

    def get(self, sid: str) -> Session | None:
        h = digest(sid)
        s = self._by_id.get(h)
        if s is None:
            return None
        now = self.clock()
        if now - s.last_seen > self.idle:
            self._end([h])
            return None
        s.last_seen = now
        if not s.id:  # read from the database: the cookie just proved which one it is
            s.id = sid
        if now - self._saved_seen.get(h, now) >= self.touch_every:
            self._saved_seen[h] = now

            async def touch(session: AsyncSession) -> None:
                await session.execute(update(ConsoleSession).where(
                    ConsoleSession.id_hash == h).values(last_seen=now))
            self._save(touch)
        return s

    def drop(self, sid: str) -> None:
        self._end([digest(sid)])

    def end_user(self, user: str) -> int:
        """End every session of a user at once (after a role change or a disable)."""
        ended = [h for h, s in self._by_id.items() if s.user == user]
        self._end(ended, save=False)

        async def remove(session: AsyncSession) -> None:
            await session.execute(delete(ConsoleSession).where(
                ConsoleSession.user_name == user))
        self._save(remove)
        return len(ended)

    def hold(self, sid: str, task: asyncio.Task[Any]) -> None:
        self._sockets.setdefault(digest(sid), set()).add(task)

    def release(self, sid: str, task: asyncio.Task[Any]) -> None:
        h = digest(sid)
        tasks = self._sockets.get(h)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._sockets[h]

    def _end(self, hashes: list[str], save: bool = True) -> None:
        for h in hashes:
            self._by_id.pop(h, None)
            self._saved_seen.pop(h, None)
            for task in self._sockets.pop(h, set()):
                task.cancel()
        if save and hashes:
            async def remove(session: AsyncSession) -> None:
                await session.execute(delete(ConsoleSession).where(
                    ConsoleSession.id_hash.in_(hashes)))
            self._save(remove)

    def _prune(self, now: datetime) -> None:
        """Sessions left to expire (the browser closed) go, at most once per idle period."""
        if now - self._pruned < self.idle:
            return
        self._pruned = now
        self._end([h for h, s in self._by_id.items() if now - s.last_seen > self.idle])

    def _save(self, work: Work) -> None:
        if not self._saving:
            return
        self._pending.append(work)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        assert self.db is not None
        while self._pending:
            batch = list(self._pending)
            self._pending.clear()

            async def run(session: AsyncSession, batch: list[Work] = batch) -> None:
                for work in batch:
                    await work(session)
            try:
                await self.db.write(run, "console sessions")
            except Exception:  # the sessions still work in memory until the next restart
                log.exception("console sessions not saved (%d change(s))", len(batch))
