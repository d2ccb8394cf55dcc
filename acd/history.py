"""Operator state changes: written to the database in order, read back after a restart."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select

from store.db import Database
from store.models import AgentStateChange

from .agents import AgentState, Change

log = logging.getLogger(__name__)


class StateHistory:
    """Changes are queued from the (synchronous) state machine and written by one task, so
    the call path never waits for the disk and the order is kept."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def record(self, change: Change) -> None:
        self._queue.put_nowait(change)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._writer())

    async def stop(self) -> None:
        """Flush what is queued, then stop."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def _writer(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            changes = [c for c in batch if c is not None]
            if changes:
                try:
                    await self.db.add(*(AgentStateChange(
                        agent_id=c.agent_id, event=c.event.value, old_state=c.old.value,
                        new_state=c.new.value, reason=c.reason, at=c.at) for c in changes),
                        what=f"{len(changes)} operator state changes")
                except Exception:
                    log.exception("could not store %d operator state changes", len(changes))
            if None in batch:
                return

    async def last_states(self) -> dict[str, AgentStateChange]:
        latest = (select(AgentStateChange.agent_id, func.max(AgentStateChange.id).label("id"))
                  .group_by(AgentStateChange.agent_id).subquery())
        stmt = select(AgentStateChange).join(latest, AgentStateChange.id == latest.c.id)
        async with self.db.sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return {r.agent_id: r for r in rows}


def restorable(row: AgentStateChange) -> tuple[AgentState, str | None] | None:
    """Logged out and away survive a restart; call states are rebuilt from Asterisk."""
    state = AgentState(row.new_state)
    if state in (AgentState.LOGGED_OUT, AgentState.AWAY):
        return state, row.reason
    return None
