"""KPI service: interaction records in, KPIs out. Reads the store; no aiohttp here."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.calls import Outcome
from core.interactions import OutcomeClass
from store.db import Database
from store.models import (
    AgentStateChange,
    CallbackRow,
    CallRecord,
    InteractionRecord,
    StaffRating,
    SurveyAnswer,
)

from .errors import CallUnknown, DuplicateRecord, InvalidRecord, NotYourCall
from .formulas import (
    DEFAULT_SHORT_ABANDON_S,
    CallbackFacts,
    CallbackKpi,
    CallFacts,
    InteractionFacts,
    Kpi,
    StateSpan,
    callback_kpi,
    compute,
)
from .satisfaction import AnswerFacts, RatingFacts
from .schemas import NewInteraction, months_of

IN_CHUNK = 500  # ids per IN (...): well under both databases' parameter limits
BookingCounts = Callable[[datetime, datetime], Awaitable[Mapping[str, Mapping[str, int]]]]
# (start, end) -> counts by name (e.g. {"fax_received_ok": 3, "fax_sent_failed": 1})
OtherChannels = Callable[[datetime, datetime], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class CallRef:
    """What an interaction record copies from its call (live or stored)."""

    call_id: str
    service: str
    offered_at: datetime
    agent_id: str | None
    answered: bool


def interaction_json(row: InteractionRecord) -> dict[str, Any]:
    return {"id": row.id, "call_id": row.call_id, "agent_id": row.agent_id,
            "service": row.service, "topic": row.topic, "outcome_class": row.outcome_class,
            "other_kind": row.other_kind, "text": row.text,
            "faq_refs": json.loads(row.faq_refs), "created_at": row.created_at.isoformat(),
            "call_offered_at": row.call_offered_at.isoformat()}


def _next_half_hour(t: datetime) -> datetime:
    # Tokyo has no DST and a whole-hour offset: UTC half-hours are Tokyo half-hours
    base = t.replace(minute=0, second=0, microsecond=0)
    return base + timedelta(minutes=30 if t.minute < 30 else 60)


def state_spans(changes: Iterable[AgentStateChange], start: datetime,
                end: datetime) -> list[StateSpan]:
    """Cut each operator's state history into spans inside [start, end), none crossing a
    half-hour. `changes` must be ordered by agent and time and include each operator's last
    change before `start`."""
    spans: list[StateSpan] = []
    last: dict[str, tuple[str, datetime]] = {}

    def close(agent: str, until: datetime) -> None:
        if agent in last:
            state, since = last[agent]
            s, e = max(since, start), min(until, end)
            while e > s:  # cut at half-hours, so that every grouping gets its own share
                cut = min(e, _next_half_hour(s))
                spans.append(StateSpan(agent, state, s, (cut - s).total_seconds()))
                s = cut

    for ch in changes:
        close(ch.agent_id, ch.at)
        last[ch.agent_id] = (ch.new_state, ch.at)
    for agent in list(last):
        close(agent, end)
    return spans


class KpiService:
    def __init__(self, db: Database,
                 live_call: Callable[[str], CallRef | None] = lambda _id: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 short_abandon_s: float = DEFAULT_SHORT_ABANDON_S,
                 known_agents: frozenset[str] = frozenset(),
                 other_channels: OtherChannels | None = None) -> None:
        self.db = db
        # counts of the channels outside the phone KPIs (FAX), from the application
        self.other_channels = other_channels
        self.known_agents = known_agents  # the operators' extensions an interaction may name
        self.live_call = live_call
        self.clock = clock
        self.short_abandon_s = short_abandon_s
        # bookings made in [start, end) by channel and status, for the monthly report; set
        # by the application (bookings is another feature), None where none are taken
        self.booking_counts: BookingCounts | None = None

    async def _call_ref(self, call_id: str) -> CallRef:
        async with self.db.sessions() as session:
            row = await session.get(CallRecord, call_id)
        if row is not None:
            return CallRef(row.id, row.service, row.offered_at, row.agent_id,
                           row.answered_at is not None)
        live = self.live_call(call_id)
        if live is None:
            raise CallUnknown(call_id)
        return live

    async def add_interaction(self, new: NewInteraction,
                              answered_by: str | None = None) -> InteractionRecord:
        """`answered_by`: the call must have been answered by this operator (an operator
        writing a record); None for supervisors, admins and scripts."""
        ref = await self._call_ref(new.call_id)
        if not ref.answered:
            raise InvalidRecord("call_id", f"call {new.call_id} was not answered by an operator")
        if answered_by is not None and ref.agent_id != answered_by:
            raise NotYourCall(f"call {new.call_id} was answered by another operator")
        row = InteractionRecord(
            call_id=new.call_id, agent_id=new.agent_id or ref.agent_id, service=ref.service,
            topic=new.topic, outcome_class=new.outcome_class.value,
            other_kind=new.other_kind.value if new.other_kind else None, text=new.text,
            faq_refs=json.dumps(list(new.faq_refs), ensure_ascii=False),
            created_at=self.clock(), call_offered_at=ref.offered_at)
        async def insert(session: AsyncSession) -> None:
            exists = await session.scalar(select(InteractionRecord.id).where(
                InteractionRecord.call_id == new.call_id))
            if exists is not None:
                raise DuplicateRecord(new.call_id)
            session.add(row)
        await self.db.write(insert, f"interaction record for call {new.call_id}")
        return row

    async def interactions(self, start: datetime, end: datetime,
                           service: str | None = None) -> list[InteractionRecord]:
        # the phone's records: a FAX's (channel fax) stays outside the phone KPIs
        stmt = select(InteractionRecord).where(InteractionRecord.call_offered_at >= start,
                                               InteractionRecord.call_offered_at < end,
                                               InteractionRecord.channel == "phone")
        if service:
            stmt = stmt.where(InteractionRecord.service == service)
        async with self.db.sessions() as session:
            return list((await session.scalars(stmt.order_by(InteractionRecord.id))).all())

    async def calls(self, start: datetime, end: datetime,
                    service: str | None = None) -> list[CallRecord]:
        stmt = select(CallRecord).where(CallRecord.offered_at >= start,
                                        CallRecord.offered_at < end)
        if service:
            stmt = stmt.where(CallRecord.service == service)
        async with self.db.sessions() as session:
            return list((await session.scalars(stmt.order_by(CallRecord.offered_at))).all())

    async def survey_answers(self, start: datetime, end: datetime,
                             service: str | None = None) -> list[AnswerFacts]:
        """The post-call survey's answers of the calls offered in [start, end)."""
        stmt = select(SurveyAnswer).where(SurveyAnswer.call_offered_at >= start,
                                          SurveyAnswer.call_offered_at < end)
        if service:
            stmt = stmt.where(SurveyAnswer.service == service)
        async with self.db.sessions() as session:
            rows = (await session.scalars(stmt.order_by(SurveyAnswer.call_offered_at,
                                                        SurveyAnswer.id))).all()
        return [AnswerFacts(r.call_id, r.service, r.agent_id, r.question, r.position, r.answer,
                            r.call_offered_at) for r in rows]

    async def staff_ratings(self, start: datetime, end: datetime) -> list[RatingFacts]:
        """The city staff's ratings of the months that overlap [start, end)."""
        months = months_of(start, end)
        async with self.db.sessions() as session:
            rows = (await session.scalars(select(StaffRating).where(
                StaffRating.month.in_(months)).order_by(StaffRating.month,
                                                        StaffRating.created_at))).all()
        return [RatingFacts(r.month, r.points, r.comment) for r in rows]

    async def spans(self, start: datetime, end: datetime) -> list[StateSpan]:
        async with self.db.sessions() as session:
            before = (await session.scalars(
                select(AgentStateChange).where(AgentStateChange.at < start)
                .order_by(AgentStateChange.agent_id, AgentStateChange.at.desc()))).all()
            inside = (await session.scalars(
                select(AgentStateChange).where(AgentStateChange.at >= start,
                                               AgentStateChange.at < end)
                .order_by(AgentStateChange.agent_id, AgentStateChange.at))).all()
        seed: dict[str, AgentStateChange] = {}
        for ch in before:  # newest first per agent: keep the first seen
            seed.setdefault(ch.agent_id, ch)
        ordered = sorted([*seed.values(), *inside], key=lambda c: (c.agent_id, c.at))
        return state_spans(ordered, start, min(end, self.clock()))

    async def kpis(self, start: datetime, end: datetime, service: str | None = None,
                   by: str | None = None, short_abandon_s: float | None = None
                   ) -> tuple[Kpi, dict[str, Kpi]]:
        calls = await self.calls(start, end, service)
        inter = await self.interactions(start, end, service)
        # operator time is shared by all services: only a centre-wide query includes it
        spans = await self.spans(start, end) if not service else []
        short = self.short_abandon_s if short_abandon_s is None else short_abandon_s
        return compute(call_facts(calls), interaction_facts(inter), spans, by, short)

    async def callbacks(self, start: datetime, end: datetime, service: str | None,
                        kpi: Kpi) -> CallbackKpi:
        """The callbacks booked by the calls offered in [start, end) (`kpi`: their KPIs),
        however late they were made: a callback's own call record may fall in a later
        period, and never counts as offered there."""
        stmt = select(CallRecord.id).where(
            CallRecord.offered_at >= start, CallRecord.offered_at < end,
            CallRecord.outcome == Outcome.CALLBACK_REQUESTED.value)
        if service:
            stmt = stmt.where(CallRecord.service == service)
        rows: dict[str, CallbackRow] = {}
        reached: dict[str, datetime] = {}
        async with self.db.sessions() as session:
            ids = list((await session.scalars(stmt)).all())
            for i in range(0, len(ids), IN_CHUNK):
                chunk = ids[i:i + IN_CHUNK]
                for row in (await session.scalars(select(CallbackRow).where(
                        CallbackRow.call_id.in_(chunk)).order_by(
                            CallbackRow.requested_at))).all():
                    rows.setdefault(row.call_id, row)  # one a call; the first, if ever more
                for of, at in (await session.execute(
                        select(CallRecord.callback_of, CallRecord.answered_at).where(
                            CallRecord.callback_of.in_(chunk),
                            CallRecord.outcome == Outcome.CALLBACK.value,
                            CallRecord.answered_at.is_not(None)))).all():
                    if of is not None and at is not None and (of not in reached
                                                              or at < reached[of]):
                        reached[of] = at
        return callback_kpi(kpi, [
            CallbackFacts(cid, rows[cid].state if cid in rows else None,
                          rows[cid].requested_at if cid in rows else None, reached.get(cid))
            for cid in ids])


def call_facts(rows: Sequence[CallRecord]) -> list[CallFacts]:
    return [CallFacts(r.service, r.offered_at, r.outcome, r.answered_at is not None, r.wait_s,
                      r.talk_s, r.id) for r in rows]


def interaction_facts(rows: Sequence[InteractionRecord]) -> dict[str, InteractionFacts]:
    return {r.call_id: InteractionFacts(r.call_id, OutcomeClass(r.outcome_class)) for r in rows}
