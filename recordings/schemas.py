"""What clients send to the recordings API (query parameters and URL ids), checked and turned
into typed values; a refusal is a 400 naming the parameter, or a 404 for an id that cannot be
a recording's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from core.calls import Outcome
from core.errors import ascii_digits, decimal_param, int_param

from .audio import FORMATS
from .errors import RecordingNotFound, RecordingsError
from .service import SORTS, RecordingQuery

Query = Mapping[str, str]
OUTCOMES = {o.value for o in Outcome} | {"failopen"}


def _bad(message: str) -> RecordingsError:
    return RecordingsError(message, error_id="bad_parameter")


def _time(query: Query, name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise RecordingsError(f"{name} must be an ISO 8601 time", error_id="bad_time") from exc
    if value.tzinfo is None:
        raise RecordingsError(f"{name} must include a time zone offset", error_id="bad_time")
    return value


def _int(query: Query, name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    return int_param(raw, name, lo, hi)


def _seconds(query: Query, name: str) -> float | None:
    raw = query.get(name)
    if not raw:
        return None
    value = decimal_param(raw, name)
    if not 0 <= value <= 86400:
        raise _bad(f"{name} must be 0..86400 seconds")
    return value


def _digits(query: Query, name: str) -> str | None:
    raw = query.get(name)
    if not raw:
        return None
    if not ascii_digits(raw.replace("+", "")) or len(raw) > 32:
        raise _bad(f"{name} must be digits")
    return raw


def search(query: Query) -> RecordingQuery:
    """GET /api/recordings: the filters, the sort and the page."""
    sort = query.get("sort", "-started_at")
    if sort not in SORTS:
        raise _bad(f"sort must be one of {sorted(SORTS)}")
    outcome = query.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise _bad(f"outcome must be one of {sorted(OUTCOMES)}")
    agent = query.get("agent") or None
    if agent is not None and (not ascii_digits(agent) or len(agent) > 16):
        raise _bad("agent must be an operator's extension")
    service = query.get("service") or None
    if service is not None and (len(service) > 32 or not service.replace(
            "_", "").replace("-", "").isalnum()):
        raise _bad("service must be a service id")
    return RecordingQuery(start=_time(query, "from"), end=_time(query, "to"), agent=agent,
                          caller=_digits(query, "caller"),
                          caller_contains=_digits(query, "caller_contains"),
                          service=service, outcome=outcome,
                          min_duration=_seconds(query, "min_duration"),
                          max_duration=_seconds(query, "max_duration"), sort=sort,
                          limit=_int(query, "limit", 100, 1, 1000),
                          offset=_int(query, "offset", 0, 0, 10_000_000))


def recording_id(raw: str) -> int:
    """The {id} of a recording's URL: digits only, else no such recording."""
    if not ascii_digits(raw) or len(raw) > 12:
        raise RecordingNotFound()
    return int(raw)


@dataclass(frozen=True)
class AudioRequest:
    format: str  # "wav" (the archived file) or a key of audio.FORMATS
    download: bool  # an attachment rather than playback


def audio(query: Query) -> AudioRequest:
    fmt = query.get("format", "wav")
    if fmt != "wav" and fmt not in FORMATS:
        raise _bad(f"format must be wav or {sorted(FORMATS)}")
    return AudioRequest(fmt, query.get("download") == "1")


def peaks_buckets(query: Query) -> int:
    """How many min/max pairs the waveform has."""
    return _int(query, "buckets", 800, 10, 10000)


@dataclass(frozen=True)
class AuditQuery:
    recording: int | None  # one recording's trail, or everyone's
    limit: int


def audit(query: Query) -> AuditQuery:
    return AuditQuery(_int(query, "recording", 0, 0, 10**12) or None,
                      _int(query, "limit", 100, 1, 1000))
