"""The satisfaction feature's service: marking a live call for the post-call survey, storing
the survey's answers, and the city staff's monthly ratings. No aiohttp here.

A call is marked by the channel variable the dialplan's mado-after reads when the operator
hangs up (ami_bridge/dialplan.py): the flow's queue node sets it over FastAGI; an operator
(or a supervisor) sets it here, over AMI, while the call is connected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ami_bridge.dialplan import Var
from core.calls import Call
from core.satisfaction import KEYS, rating_points
from store.db import Database
from store.models import StaffRating, SurveyAnswer

from .errors import CallNotFound, MarkFailed, NotConnected, NotYourCall
from .schemas import NewRating

log = logging.getLogger(__name__)


class AmiPort(Protocol):
    async def send(self, action: Mapping[str, str],
                   timeout: float | None = None) -> dict[str, str]: ...


class LiveCalls(Protocol):
    """The live calls, as the application knows them (the ACD knows who is connected)."""

    def live(self, call_id: str) -> Call | None: ...

    def connected(self, call: Call) -> bool:
        """An operator is talking to this caller now."""
        ...


@dataclass(frozen=True)
class Response:
    """One call's survey, as the IVR collected it."""

    call_id: str
    service: str
    agent_id: str | None
    language: str
    offered_at: datetime
    answers: Sequence[tuple[str, int, int | None]]  # (question id, position, key or None)


class SurveyService:
    def __init__(self, db: Database, ami: AmiPort, calls: LiveCalls,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.ami = ami
        self.calls = calls
        self.clock = clock

    async def mark(self, call_id: str, operator: str | None = None) -> Call:
        """The caller hears the survey once the operator hangs up. `operator`: an operator's
        own request, allowed only on the call they are talking on; None for supervisors,
        admins and scripts. Marking twice is harmless."""
        call = self.calls.live(call_id)
        if call is None:
            raise CallNotFound(call_id)
        if not self.calls.connected(call):
            raise NotConnected()
        if operator is not None and call.agent_id != operator:
            raise NotYourCall()
        try:
            await self.ami.send({"Action": "Setvar", "Channel": call.channel,
                                 "Variable": Var.SURVEY, "Value": "1"})
        except Exception as exc:  # AMI away, or the channel just went
            log.warning("call %s: survey mark not set: %r", call.id, exc)
            raise MarkFailed("Asterisk did not take the survey mark; try again") from exc
        log.info("call %s marked for the post-call survey (operator %s)", call.id,
                 call.agent_id)
        return call

    async def record(self, response: Response) -> list[SurveyAnswer]:
        """Store a call's answers; a second report for the same call and question is
        ignored (the first one stands). Returns the rows stored now."""
        now = self.clock()
        rows = [SurveyAnswer(call_id=response.call_id, agent_id=response.agent_id,
                             service=response.service, language=response.language,
                             question=question, position=position,
                             answer=value if value in KEYS else None, answered_at=now,
                             call_offered_at=response.offered_at)
                for question, position, value in response.answers]

        stored: list[SurveyAnswer] = []

        async def insert(session: AsyncSession) -> None:
            have = set((await session.scalars(select(SurveyAnswer.question).where(
                SurveyAnswer.call_id == response.call_id))).all())
            stored[:] = [r for r in rows if r.question not in have]
            session.add_all(stored)
        await self.db.write(insert, f"survey answers of call {response.call_id}")
        return stored

    async def rate(self, new: NewRating, rater: str) -> tuple[StaffRating, bool]:
        """A staff member's rating of a month; their earlier one for that month is replaced.
        Returns the row and whether it is new."""
        points = rating_points(new.given, new.scale)
        created = False
        kept: list[StaffRating] = []

        async def upsert(session: AsyncSession) -> None:
            nonlocal created
            row = await session.scalar(select(StaffRating).where(
                StaffRating.month == new.month, StaffRating.rater == rater))
            created = row is None
            if row is None:
                row = StaffRating(month=new.month, rater=rater)
                session.add(row)
            row.points, row.given, row.scale = points, new.given, new.scale
            row.comment, row.created_at = new.comment, self.clock()
            kept[:] = [row]
        await self.db.write(upsert, f"staff rating of {new.month}")
        return kept[0], created

    async def ratings(self, month: str) -> list[StaffRating]:
        async with self.db.sessions() as session:
            return list((await session.scalars(select(StaffRating).where(
                StaffRating.month == month).order_by(StaffRating.created_at,
                                                     StaffRating.id))).all())
