"""What clients send to the KPI API (periods, numbers, interaction records), checked and
turned into typed values; a refusal is a BadQuery (400) or an InvalidRecord (422) naming the
field. The command line goes through the same checks."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from core.clock import CITY_TZ
from core.errors import ascii_decimal
from core.interactions import OtherKind, OutcomeClass

from .errors import BadQuery, InvalidRecord
from .formulas import BUCKETS

Query = Mapping[str, str]
MAX_TEXT = 4000
MAX_FAQ_REFS = 20


# ---- periods and numbers in query strings ---------------------------------------------------
def parse_time(raw: str, end: bool = False) -> datetime:
    """ISO 8601 date (a whole Tokyo day; as an end, inclusive), month (YYYY-MM) or time."""
    try:
        if len(raw) == 7:
            d = date.fromisoformat(raw + "-01")
            if end:
                d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
            return datetime.combine(d, time(), CITY_TZ)
        if len(raw) == 10:
            d = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
            return datetime.combine(d, time(), CITY_TZ)
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadQuery(f"{raw!r} is not an ISO 8601 date, month or time") from exc
    return value if value.tzinfo else value.replace(tzinfo=CITY_TZ)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(now.astimezone(CITY_TZ).date().replace(day=1), time(), CITY_TZ)
    return start, parse_time(start.strftime("%Y-%m"), end=True)


def months_of(start: datetime, end: datetime) -> list[str]:
    """The city's months (YYYY-MM) that overlap [start, end)."""
    first = start.astimezone(CITY_TZ).date().replace(day=1)
    last = (end.astimezone(CITY_TZ) - timedelta(microseconds=1)).date()
    out: list[str] = []
    d = first
    while d <= last and len(out) < 1200:  # a century of months at most
        out.append(d.strftime("%Y-%m"))
        d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def period(query: Query, now: datetime) -> tuple[datetime, datetime]:
    """from/to from the query; the current Tokyo month when both are missing."""
    start, end = month_bounds(now)
    if query.get("from"):
        start = parse_time(query["from"])
    if query.get("to"):
        end = parse_time(query["to"], end=True)
    if end <= start:
        raise BadQuery("`to` must be after `from`")
    return start, end


def number(query: Query, name: str) -> float | None:
    """An optional plain decimal number (see core.errors.ascii_decimal)."""
    raw = query.get(name)
    if not raw:
        return None
    if not ascii_decimal(raw):
        raise BadQuery(f"{name} must be a decimal number like 0.85")
    return float(raw)


def grouping(by: str | None) -> str | None:
    """How KPIs are grouped (formulas.BUCKETS), or None for the total only."""
    if by is not None and by not in BUCKETS:
        raise BadQuery(f"by must be one of {', '.join(BUCKETS)}")
    return by


def short_abandon(seconds: float | None) -> float | None:
    """Abandons this short are not counted; None: the configured default."""
    if seconds is not None and not 0 <= seconds <= 600:
        raise BadQuery("short_abandon_s must be between 0 and 600 seconds")
    return seconds


def staffing_shares(max_occupancy: float, shrinkage: float) -> tuple[float, float]:
    if not 0 < max_occupancy <= 1 or not 0 <= shrinkage < 1:
        raise BadQuery("max_occupancy must be in (0, 1] and shrinkage in [0, 1)")
    return max_occupancy, shrinkage


@dataclass(frozen=True)
class PeriodQuery:
    start: datetime
    end: datetime  # exclusive
    service: str | None  # one service, or all


def period_query(query: Query, now: datetime) -> PeriodQuery:
    """GET /api/interactions: a period and an optional service."""
    start, end = period(query, now)
    return PeriodQuery(start, end, query.get("service") or None)


@dataclass(frozen=True)
class KpiQuery:
    start: datetime
    end: datetime
    service: str | None
    by: str | None
    short_abandon_s: float | None


def kpi_query(query: Query, now: datetime) -> KpiQuery:
    """GET /api/kpi."""
    start, end = period(query, now)
    short = number(query, "short_abandon_s")
    return KpiQuery(start, end, query.get("service") or None,
                    grouping(query.get("by") or None), short_abandon(short))


@dataclass(frozen=True)
class StaffingQuery:
    start: datetime
    end: datetime
    service: str | None
    max_occupancy: float  # (0, 1]
    shrinkage: float  # [0, 1)


def staffing_query(query: Query, now: datetime) -> StaffingQuery:
    """GET /api/kpi/staffing."""
    start, end = period(query, now)
    occ, shrink = number(query, "max_occupancy"), number(query, "shrinkage")
    occupancy, shrinkage = staffing_shares(1.0 if occ is None else occ,
                                           0.0 if shrink is None else shrink)
    return StaffingQuery(start, end, query.get("service") or None, occupancy, shrinkage)


# ---- interaction records --------------------------------------------------------------------
@dataclass(frozen=True)
class NewInteraction:
    call_id: str
    topic: str
    outcome_class: OutcomeClass
    other_kind: OtherKind | None
    text: str
    faq_refs: tuple[str, ...]
    agent_id: str | None


def _str(data: Mapping[str, Any], key: str, required: bool, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidRecord(key, f"{key} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRecord(key, f"{key} must be a non-empty string")
    if len(value) > limit:
        raise InvalidRecord(key, f"{key} is longer than {limit} characters")
    return value.strip()


def parse_interaction(data: Mapping[str, Any]) -> NewInteraction:
    """Validate an interaction record from the API; errors name the field and the choices."""
    unknown = set(data) - {"call_id", "topic", "outcome_class", "other_kind", "text",
                           "faq_refs", "agent_id"}
    if unknown:
        raise InvalidRecord(sorted(unknown)[0], f"unknown field(s): {', '.join(sorted(unknown))}")
    call_id = _str(data, "call_id", True, 32)
    topic = _str(data, "topic", True, 64)
    raw_class = _str(data, "outcome_class", True, 8)
    classes = [c.value for c in OutcomeClass]
    if raw_class not in classes:
        raise InvalidRecord("outcome_class", f"outcome_class {raw_class!r} is not one of "
                            f"{', '.join(classes)}")
    cls = OutcomeClass(raw_class)
    raw_kind = _str(data, "other_kind", False, 16)
    kinds = [k.value for k in OtherKind]
    kind: OtherKind | None = None
    if cls is OutcomeClass.OTHER:
        if raw_kind not in kinds:
            raise InvalidRecord("other_kind", f"{OutcomeClass.OTHER.value} needs other_kind, "
                                f"one of {', '.join(kinds)}")
        kind = OtherKind(raw_kind)
    elif raw_kind is not None:
        raise InvalidRecord("other_kind", f"other_kind is only for {OutcomeClass.OTHER.value}")
    text = _str(data, "text", False, MAX_TEXT) or ""
    refs = data.get("faq_refs", [])
    if (not isinstance(refs, list) or len(refs) > MAX_FAQ_REFS
            or not all(isinstance(r, str) and 0 < len(r) <= 64 for r in refs)):
        raise InvalidRecord("faq_refs", f"faq_refs must be a list of at most {MAX_FAQ_REFS} "
                            "FAQ ids (strings)")
    agent = _str(data, "agent_id", False, 16)
    assert call_id is not None and topic is not None
    return NewInteraction(call_id, topic, cls, kind, text, tuple(refs), agent)


def interaction(data: Mapping[str, Any], known_agents: Collection[str]) -> NewInteraction:
    """POST /api/interactions: a valid record whose agent_id, if any, is a known operator."""
    new = parse_interaction(data)
    if new.agent_id is not None and new.agent_id not in known_agents:
        raise InvalidRecord("agent_id", f"agent_id {new.agent_id!r} is not a known "
                            "operator's extension")
    return new
