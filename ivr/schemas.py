"""What clients send to the IVR API (override, closure and TTS preview bodies, the board's
language), checked and turned into typed values; a refusal is an IvrError, mostly
InvalidRequest (400 "invalid"). What needs the running flow set (an override's mode and
message, a board event's fields) is checked by the service and ivr.events."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from .closures import ClosureError, DatedClosure, check_name
from .errors import InvalidRequest, IvrError
from .events import Event, Status, parse_event
from .prompts import LANGUAGES

Body = Mapping[str, Any]
_TTS_KEY = re.compile(r"[0-9a-f]{24}")


@dataclass(frozen=True)
class OverrideRequest:
    mode: str  # an OverrideMode value, checked by the service
    minutes: int | None  # how long; None: until lifted
    message: Any  # {lang: text} for an emergency, checked by the service


def override_request(body: Body) -> OverrideRequest:
    """POST /api/schedules/{service}/override."""
    minutes = body.get("minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int)):
        raise InvalidRequest("'minutes' must be an integer")
    unknown = set(body) - {"mode", "minutes", "message"}
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    return OverrideRequest(str(body.get("mode", "")), minutes, body.get("message"))


def board_language(query: Mapping[str, str]) -> str:
    """?lang= of /api/board/now."""
    lang = query.get("lang", "ja")
    if lang not in ("ja", "en"):
        raise InvalidRequest("'lang' must be ja or en")
    return lang


def _day(raw: Any, what: str) -> date:
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise InvalidRequest(f"'{what}' must be a date YYYY-MM-DD") from exc


def new_closure(body: Body, services: Collection[str]) -> DatedClosure:
    """POST /api/closures; `services`: the service ids of the flow set serving now."""
    day = _day(body.get("date"), "date")
    try:
        name = check_name(str(body.get("name", "")))
    except ClosureError as exc:
        raise InvalidRequest(str(exc)) from exc
    service = str(body.get("service", ""))
    if service != "*" and service not in services:
        raise InvalidRequest("'service' must be a service id or * (every one)")
    return DatedClosure(day, name, () if service == "*" else (service,))


@dataclass(frozen=True)
class ClosureRemoval:
    day: date
    service: str


def closure_removal(body: Body, services: Collection[str]) -> ClosureRemoval:
    """POST /api/closures/delete."""
    day = _day(body.get("date"), "date")
    service = str(body.get("service", ""))
    if service not in services:
        raise InvalidRequest("'service' must be a service id")
    return ClosureRemoval(day, service)


@dataclass(frozen=True)
class TtsPreview:
    lang: str  # one of prompts.LANGUAGES
    event: Event  # as edited, not saved


def tts_preview(body: Body, statuses: dict[str, Status], tz: ZoneInfo) -> TtsPreview:
    """POST /api/tts/preview: a language and a board event (checked like a saved one)."""
    lang = body.get("lang")
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise InvalidRequest(f"'lang' must be one of {', '.join(LANGUAGES)}")
    return TtsPreview(lang, parse_event(body.get("event"), statuses, tz))


def tts_file_name(lang: str, key: str) -> str:
    """/api/tts/{lang}/{key}: the rendered file's name under the TTS cache, or a 404."""
    if lang not in LANGUAGES or not _TTS_KEY.fullmatch(key):
        raise IvrError("no such rendered announcement", status=404, error_id="not_found")
    return f"{lang}/{key}.wav"
