"""Callbacks in the database: a pending callback outlives an engine restart, and the
database's partial unique index keeps one open callback per number even if two requests
race."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import OPEN_CALLBACK_STATES, CallbackRow

from .callbacks import Callback, CallbackState


class DuplicateCallback(Exception):
    """This number already has a callback waiting or being dialled."""


def _row(cb: Callback, now_row: CallbackRow | None = None) -> CallbackRow:
    row = now_row or CallbackRow(id=cb.id)
    row.call_id, row.service, row.queue, row.number = cb.call_id, cb.service, cb.queue, cb.number
    row.language, row.topic, row.priority = cb.language, cb.topic, cb.priority
    row.queued_at, row.requested_at, row.state = cb.queued_at, cb.requested_at, cb.state.value
    row.attempts, row.not_before, row.last_status = cb.attempts, cb.not_before, cb.last_status
    row.agent_id, row.result_call_id = cb.agent_id, cb.result_call_id
    return row


def _callback(row: CallbackRow) -> Callback:
    return Callback(row.id, row.call_id, row.service, row.queue, row.number, row.language,
                    row.topic, row.priority, row.queued_at, row.requested_at,
                    CallbackState(row.state), row.attempts, row.not_before, row.last_status,
                    row.agent_id, row.result_call_id)


class CallbackStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, cb: Callback) -> None:
        """Store a new callback; DuplicateCallback when its number has an open one."""
        async def work(session: AsyncSession) -> None:
            open_one = await session.scalar(select(CallbackRow.id).where(
                CallbackRow.number == cb.number, CallbackRow.state.in_(OPEN_CALLBACK_STATES)))
            if open_one is not None:
                raise DuplicateCallback(cb.number)
            row = _row(cb)
            row.updated_at = cb.requested_at
            session.add(row)
        try:
            await self.db.write(work, f"callback {cb.id}")
        except IntegrityError as exc:  # the same number, in a request that won the race
            raise DuplicateCallback(cb.number) from exc

    async def save(self, cb: Callback, at: datetime) -> None:
        async def work(session: AsyncSession) -> None:
            row = await session.get(CallbackRow, cb.id)
            if row is None:
                return
            _row(cb, row)
            row.updated_at = at
        await self.db.write(work, f"callback {cb.id}")

    async def open_callbacks(self) -> list[Callback]:
        async with self.db.sessions() as session:
            rows = (await session.scalars(select(CallbackRow).where(
                CallbackRow.state.in_(OPEN_CALLBACK_STATES)).order_by(
                    CallbackRow.queued_at))).all()
        return [_callback(r) for r in rows]
