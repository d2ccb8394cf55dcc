"""Fairness figures: calls and talk time per operator per day (Asia/Tokyo days)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from core.clock import CITY_TZ
from store.db import Database
from store.models import CallRecord


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), CITY_TZ)
    return start, start + timedelta(days=1)


async def per_operator(db: Database, day: date) -> dict[str, dict[str, float]]:
    start, end = day_bounds(day)
    talk = func.sum(
        (func.julianday(CallRecord.ended_at) - func.julianday(CallRecord.answered_at)) * 86400
    ) if db.url.startswith("sqlite") else func.sum(
        func.extract("epoch", CallRecord.ended_at - CallRecord.answered_at))
    stmt = (select(CallRecord.agent_id, func.count(), talk)
            .where(CallRecord.answered_at >= start, CallRecord.answered_at < end,
                   CallRecord.agent_id.is_not(None))
            .group_by(CallRecord.agent_id))
    async with db.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return {r[0]: {"calls": int(r[1]), "talk_s": round(float(r[2] or 0.0), 1)} for r in rows}
