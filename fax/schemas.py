"""What clients send to the FAX API, checked and typed; a refusal is a 400 naming the
parameter, or a 404 for an id that cannot be ours."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from core.clock import CITY_TZ
from core.errors import int_param
from core.interactions import OtherKind, OutcomeClass

from .errors import FaxError, FaxNotFound
from .service import FaxInteraction, FaxQuery, FaxResult, FaxStatus

Query = Mapping[str, str]
_ID = re.compile(r"[0-9a-f]{32}")
_NUMBER_PART = re.compile(r"[0-9A-Za-z +._:-]{1,32}")  # what a meta value may hold
MAX_TEXT = 4000
MAX_FAX_TEXT = 8000  # an answer sent as a FAX (fax.textpdf)


def _bad(message: str, error_id: str = "bad_parameter") -> FaxError:
    return FaxError(message, error_id=error_id)


def fax_id(raw: str) -> str:
    if not _ID.fullmatch(raw):
        raise FaxNotFound()
    return raw


def _when(query: Query, name: str, end: bool) -> datetime | None:
    """An ISO 8601 time with its offset, or a date: that day in the city (`to` a date
    includes the whole day)."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise _bad(f"{name} must be an ISO 8601 date or time", "bad_time") from exc
    if len(raw) == 10:
        value = datetime.combine(value.date(), time(), CITY_TZ)
        return value + timedelta(days=1) if end else value
    if value.tzinfo is None:
        raise _bad(f"{name} must include a time zone offset", "bad_time")
    return value


def _page(query: Query) -> tuple[int, int]:
    limit = int_param(query.get("limit", "100"), "limit", 1, 500)
    offset = int_param(query.get("offset", "0"), "offset", 0, 10_000_000)
    return limit, offset


def search(query: Query) -> FaxQuery:
    """GET /api/fax: from, to (dates or times), number, status, result, limit, offset."""
    number = query.get("number") or None
    if number is not None and not _NUMBER_PART.fullmatch(number):
        raise _bad("number must be up to 32 digits, letters, spaces or + . _ : -")
    status = query.get("status") or None
    if status is not None and status not in set(FaxStatus):
        raise _bad(f"status must be one of {', '.join(FaxStatus)}")
    result = query.get("result") or None
    if result is not None and result not in set(FaxResult):
        raise _bad(f"result must be one of {', '.join(FaxResult)}")
    limit, offset = _page(query)
    return FaxQuery(start=_when(query, "from", False), end=_when(query, "to", True),
                    number=number, status=FaxStatus(status) if status else None,
                    result=FaxResult(result) if result else None, limit=limit, offset=offset)


def page(query: Query) -> tuple[int, int]:
    return _page(query)


def status(body: dict[str, Any]) -> FaxStatus:
    value = body.get("status")
    if not isinstance(value, str) or value not in set(FaxStatus):
        raise _bad(f"status must be one of {', '.join(FaxStatus)}")
    return FaxStatus(value)


def text_fax(body: dict[str, Any]) -> tuple[str, str, str]:
    """POST /api/fax/send-text: (text, heading, number)."""
    text, heading, number = body.get("text"), body.get("heading", ""), body.get("number")
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_FAX_TEXT:
        raise _bad(f"text must be 1-{MAX_FAX_TEXT} characters")
    if not isinstance(heading, str) or len(heading) > 200:
        raise _bad("heading must be at most 200 characters")
    if not isinstance(number, str) or len(number) > 64:
        raise _bad("number must be a string")
    return text, heading, number


def interaction(body: dict[str, Any]) -> FaxInteraction:
    topic, cls, kind, text = (body.get("topic"), body.get("outcome_class"),
                              body.get("other_kind"), body.get("text", ""))
    if not isinstance(topic, str) or not 1 <= len(topic.strip()) <= 64:
        raise _bad("topic must be 1-64 characters")
    if not isinstance(cls, str) or cls not in set(OutcomeClass):
        raise _bad(f"outcome_class must be one of {', '.join(OutcomeClass)}")
    outcome = OutcomeClass(cls)
    other: OtherKind | None = None
    if outcome is OutcomeClass.OTHER:
        if not isinstance(kind, str) or kind not in set(OtherKind):
            raise _bad(f"other_kind must be one of {', '.join(OtherKind)}")
        other = OtherKind(kind)
    elif kind is not None:
        raise _bad("other_kind is only for the class その他")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise _bad(f"text must be at most {MAX_TEXT} characters")
    return FaxInteraction(topic.strip(), outcome, other, text)
