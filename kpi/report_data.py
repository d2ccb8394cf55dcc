"""The monthly report's figures, in no language: KPIs of the month as a whole, by service, day,
hour and half-hour; topics, interaction outcomes, transfers; satisfaction; and the proposals
as facts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from core.calls import OFFERED_OUTCOMES, Outcome
from core.clock import CITY_TZ
from core.interactions import OutcomeClass
from store.models import CallRecord

from .formulas import CallbackKpi, Kpi, compute
from .http import parse_time
from .proposals import Proposal, proposals, satisfaction_proposals
from .report_satisfaction import MonthSatisfaction, month_satisfaction
from .service import KpiService, call_facts, interaction_facts


@dataclass
class MonthData:
    month: str  # YYYY-MM
    service: str | None  # one service's id, None: all
    start: datetime  # the month in the city's time
    end: datetime
    generated_at: datetime
    total: Kpi
    by_service: dict[str, Kpi]
    by_day: dict[str, Kpi]
    by_hour: dict[str, Kpi]
    by_halfhour: dict[str, Kpi]
    topics: Counter[str]
    unresolved_topics: Counter[str]
    transfers: Counter[str]
    proposals: list[Proposal]
    # interaction class and, for その他, its kind: answered offered calls only, like the KPIs
    outcomes: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    ended_in_ivr: int = 0
    recovered: int = 0
    short_abandon_s: float = 0.0
    names: Mapping[str, str] = field(default_factory=dict)  # service id → name
    satisfaction: MonthSatisfaction = field(default_factory=MonthSatisfaction)
    callbacks: CallbackKpi = field(default_factory=CallbackKpi)
    # course and event bookings of the month by channel and status (all services only)
    bookings: dict[str, dict[str, int]] | None = None
    # channels outside the phone KPIs (FAX): counts by name, from the application
    other_channels: dict[str, int] = field(default_factory=dict)

    def service_name(self, service_id: str) -> str:
        return self.names.get(service_id, service_id)

    @property
    def staffing_known(self) -> bool:
        # operators serve every service: their time is only in a centre-wide report
        return self.service is None

    @property
    def complete(self) -> bool:
        """The month was over when the report was made."""
        return self.generated_at >= self.end

    @property
    def last_day(self) -> date:
        until = min(self.end, max(self.generated_at, self.start + timedelta(seconds=1)))
        return (until.astimezone(CITY_TZ) - timedelta(microseconds=1)).date()


def _transfer_targets(rows: Sequence[CallRecord]) -> Counter[str]:
    out: Counter[str] = Counter()
    for r in rows:
        for step in json.loads(r.transfers or "[]"):
            out[str(step.get("to", "?"))] += 1
    return out


async def month_data(service: KpiService, month: str, svc: str | None = None,
                     names: Mapping[str, str] | None = None) -> MonthData:
    start, end = parse_time(month), parse_time(month, end=True)
    rows = await service.calls(start, end, svc)
    inter = await service.interactions(start, end, svc)
    spans = await service.spans(start, end) if not svc else []
    facts, ifacts = call_facts(rows), interaction_facts(inter)
    short = service.short_abandon_s
    total, by_day = compute(facts, ifacts, spans, "day", short)
    _, by_hour = compute(facts, ifacts, spans, "hour_of_day", short)
    _, by_half = compute(facts, ifacts, spans, "halfhour", short)
    by_service = {s: compute([f for f in facts if f.service == s], ifacts, (), None, short)[0]
                  for s in sorted({f.service for f in facts})}
    # a callback's own call is the center's, and repeats the topic of the call that booked
    # it: topics count each citizen's call once, like the KPIs
    callback_calls = {r.id for r in rows if r.outcome == Outcome.CALLBACK}
    inter_calls = [i for i in inter if i.call_id not in callback_calls]
    topics: Counter[str] = Counter(i.topic for i in inter_calls)
    for r in rows:
        if r.topic and r.id not in ifacts and r.id not in callback_calls:
            topics[r.topic] += 1
    unresolved: Counter[str] = Counter(
        i.topic for i in inter_calls
        if i.outcome_class in (OutcomeClass.PUT_THROUGH.value, OutcomeClass.TRANSFER.value))
    satisfaction = month_satisfaction(await service.survey_answers(start, end, svc),
                                      await service.staff_ratings(start, end))
    counted = {r.id for r in rows if r.answered_at is not None and r.outcome in OFFERED_OUTCOMES}
    outcomes: Counter[tuple[str, str | None]] = Counter(
        (i.outcome_class, i.other_kind if i.outcome_class == OutcomeClass.OTHER.value else None)
        for i in inter if i.call_id in counted)
    other = (await service.other_channels(start, end)
             if service.other_channels is not None and not svc else {})
    return MonthData(
        month, svc, start, end, service.clock(), total, by_service, by_day, by_hour, by_half,
        topics, unresolved, _transfer_targets(rows),
        proposals(total, by_half, unresolved, staffing_known=not svc)
        + satisfaction_proposals(satisfaction.citizen, satisfaction.staff), outcomes,
        ended_in_ivr=sum(r.outcome == Outcome.ENDED_IN_IVR for r in rows),
        recovered=sum(r.outcome == Outcome.RECOVERED for r in rows),
        short_abandon_s=short, names=dict(names or {}), satisfaction=satisfaction,
        callbacks=await service.callbacks(start, end, svc, total),
        bookings=await _bookings(service, start, end) if not svc else None,
        other_channels=other)


async def _bookings(service: KpiService, start: datetime,
                    end: datetime) -> dict[str, dict[str, int]] | None:
    if service.booking_counts is None:
        return None
    return {k: dict(v) for k, v in (await service.booking_counts(start, end)).items()}
